#![recursion_limit = "256"]

//! Table-driven conformance tests of the expression language: exact DynamoDB messages,
//! evaluation truth tables, update results, projections, key conditions and fuzzing.

mod attrs;
mod common;
mod condition_eval;
mod condition_parse;
mod fuzz;
mod key_condition;
mod projection;
mod update;
