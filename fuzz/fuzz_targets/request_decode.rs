//! The request decoder: a body through `Req::parse`, its typed getters, the attribute-value
//! decoder (`item_from_json`) on every item-shaped member, and the legacy-parameter
//! translation. Nothing may panic whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_api::request::common::{Placeholders, Req};
use meridian_api::request::legacy::{Op, translate};
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use meridian_model::value::{item_from_json, item_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(mut req) = Req::parse(data) else {
        return;
    };
    for member in ["Item", "Key", "ExclusiveStartKey"] {
        if let Ok(Some(item)) = req.item(member) {
            // What decodes must encode and decode to the same item.
            let again = item_from_json(&item_to_json(&item));
            assert_eq!(again.ok(), Some(item));
        }
    }
    let _ = req.str("TableName");
    let _ = req.int("Limit");
    let _ = req.bool("ConsistentRead");
    let _ = req.list("TransactItems");
    if let Ok(ph) = Placeholders::from_req(&req) {
        let _ = ph.attrs();
    }
    let schema = KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: None,
    };
    let op = match data.len() % 7 {
        0 => Op::GetItem,
        1 => Op::BatchGetItem,
        2 => Op::PutItem,
        3 => Op::DeleteItem,
        4 => Op::UpdateItem,
        5 => Op::Query,
        _ => Op::Scan,
    };
    let _ = translate(&mut req, op, &schema);
});
