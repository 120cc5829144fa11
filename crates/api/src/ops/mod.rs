//! One file per DynamoDB operation; each parses its input, applies it, and encodes the output.

pub mod batch_get_item;
pub mod batch_write_item;
pub mod create_table;
pub mod delete_item;
pub mod delete_table;
pub mod describe_table;
pub mod get_item;
pub mod list_tables;
pub mod put_item;
pub mod query;
pub mod scan;
pub mod update_item;

pub mod describe_endpoints;
pub mod describe_limits;
pub mod describe_time_to_live;
pub mod list_tags_of_resource;
pub mod tag_resource;
pub mod transact_get_items;
pub mod transact_write_items;
pub mod untag_resource;
pub mod update_table;
pub mod update_time_to_live;
