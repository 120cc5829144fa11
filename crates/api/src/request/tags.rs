//! What `TagResource`, `UntagResource` and `ListTagsOfResource` share: table ARNs, tag rules,
//! and the tags' home in `TableMeta.extra["Tags"]` (a JSON object, key → value).

use super::common::{Req, store_err};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::table::TableMeta;
use meridian_storage::StoreError;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Key of the tags in `TableMeta.extra`.
pub const TAGS_KEY: &str = "Tags";
/// Most tags on one table.
pub const MAX_TAGS: usize = 50;
/// Longest tag key.
pub const MAX_KEY_LEN: usize = 128;
/// Longest tag value.
pub const MAX_VALUE_LEN: usize = 256;

/// The table named by `ResourceArn`. Any region and account are accepted: in an active-active
/// deployment a table's ARN from another region names the same table.
pub fn table_of_arn(req: &Req) -> Result<(String, String), ApiError> {
    let arn = req
        .str("ResourceArn")?
        .ok_or_else(|| ApiError::validation("Invalid TableArn"))?;
    let invalid = || {
        ApiError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        ))
    };
    let rest = arn.strip_prefix("arn:aws:dynamodb:").ok_or_else(invalid)?;
    let mut parts = rest.splitn(3, ':');
    let (region, account, resource) = (parts.next(), parts.next(), parts.next());
    let ok_region = region.is_some_and(|r| !r.is_empty());
    let ok_account =
        account.is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    let name = resource
        .and_then(|r| r.strip_prefix("table/"))
        .filter(|n| n.len() >= 3 && !n.contains('/'));
    match (ok_region, ok_account, name) {
        (true, true, Some(name)) => Ok((arn.to_owned(), name.to_owned())),
        _ => Err(invalid()),
    }
}

/// `ResourceNotFoundException` for an ARN, in DynamoDB's words (its typo included).
pub fn arn_not_found(arn: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Requested resource not found: ResourcArn: {arn} not found"
    ))
}

/// Whether `s` holds only what tags may: letters, digits and whitespace (any script), and
/// `+ - = . _ : / @`.
pub fn allowed_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c))
}

/// Checks a tag key.
pub fn check_key(k: &str) -> Result<(), ApiError> {
    if k.is_empty() || k.chars().count() > MAX_KEY_LEN || !allowed_chars(k) {
        return Err(ApiError::validation(format!(
            "The Tag Key provided is invalid, Key: {k}"
        )));
    }
    Ok(())
}

/// Parses and checks a `Tags` list (of `TagResource` or `CreateTable`).
pub fn parse_tags(raw: &[Value]) -> Result<Vec<(String, String)>, ApiError> {
    let mut tags = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for t in raw {
        let t = Req::nested(t, "Tags")?;
        let key = t.str("Key")?.unwrap_or_default().to_owned();
        check_key(&key)?;
        if key.starts_with("aws:") {
            return Err(ApiError::validation(format!(
                "Tag Key cannot be prefixed with aws:, Key: {key}"
            )));
        }
        let value = t.str("Value")?.ok_or_else(|| {
            ApiError::validation("The Tag Value provided is invalid, Value: null")
        })?;
        if value.chars().count() > MAX_VALUE_LEN || !allowed_chars(value) {
            return Err(ApiError::validation(format!(
                "The Tag Value provided is invalid, Value: {value}"
            )));
        }
        if !seen.insert(key.clone()) {
            return Err(ApiError::validation(format!(
                "Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}"
            )));
        }
        tags.push((key, value.to_owned()));
    }
    Ok(tags)
}

/// The initial tags of `CreateTable`, as stored in `TableMeta.extra`.
pub fn initial_extra(req: &Req) -> Result<Map<String, Value>, ApiError> {
    let mut extra = Map::new();
    let Some(raw) = req.list("Tags")? else {
        return Ok(extra);
    };
    let tags = parse_tags(raw)?;
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(
            "Number of Tags exceed the current limit for the provided ResourceArn",
        ));
    }
    if !tags.is_empty() {
        let m = tags
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        extra.insert(TAGS_KEY.into(), Value::Object(m));
    }
    Ok(extra)
}

/// The tags of a table, in the order they were first set.
pub fn tags_of(t: &TableMeta) -> Vec<(String, String)> {
    t.extra
        .get(TAGS_KEY)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Changes a table's tags atomically in the writer; `change` may refuse with an error, which
/// leaves the tags as they were.
pub async fn update_tags<F>(
    state: &AppState,
    name: &str,
    arn: &str,
    change: F,
) -> Result<(), ApiError>
where
    F: FnOnce(&mut Map<String, Value>) -> Result<(), ApiError> + Send + 'static,
{
    let refused: Arc<Mutex<Option<ApiError>>> = Arc::default();
    let cell = refused.clone();
    state
        .store()
        .update_table(
            name,
            Box::new(move |meta| {
                let mut tags = meta
                    .extra
                    .get(TAGS_KEY)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                match change(&mut tags) {
                    Ok(()) if tags.is_empty() => {
                        meta.extra.remove(TAGS_KEY);
                    }
                    Ok(()) => {
                        meta.extra.insert(TAGS_KEY.into(), Value::Object(tags));
                    }
                    Err(e) => {
                        if let Ok(mut c) = cell.lock() {
                            *c = Some(e);
                        }
                    }
                }
            }),
        )
        .await
        .map_err(|e| match e {
            StoreError::NoSuchTable(_) => arn_not_found(arn),
            other => store_err(other),
        })?;
    match refused.lock().ok().and_then(|mut c| c.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(arn: &str) -> Req<'static> {
        Req::parse(json!({"ResourceArn": arn}).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn arns() {
        let (_, name) =
            table_of_arn(&req("arn:aws:dynamodb:us-east:000000000000:table/users")).unwrap();
        assert_eq!(name, "users");
        for bad in [
            "a:b:c:d:e:f/g",
            "arn:aws:dynamodb:us-east:000000000000:table/ab",
            "arn:aws:dynamodb:us-east:000000000000:table/users/index/gsi",
            "arn:aws:dynamodb::000000000000:table/users",
            "arn:aws:dynamodb:us-east:acct:table/users",
        ] {
            assert!(table_of_arn(&req(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_characters() {
        for ok in ["team", "a b", "k+-=._:/@", "законные буквы", "ѮѮ", "7", " "] {
            assert!(allowed_chars(ok), "{ok}");
        }
        for bad in ["hi!", "d%g", "\"hello\"", "#!%%^$$&", "<><"] {
            assert!(!allowed_chars(bad), "{bad}");
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
