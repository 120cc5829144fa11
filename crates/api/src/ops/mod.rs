//! One file per DynamoDB operation; each parses its input, applies it, and encodes the output.

pub mod common;
pub mod describe;
pub mod paging;

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
