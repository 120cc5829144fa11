"""Keeps docs/compatibility/dynamodb.md true: the operation table covers botocore's whole
DynamoDB model, supported operations are dispatched, unsupported ones are refused, and the
parameter tables cover every request member of the supported operations."""

import re

import botocore.session
import pytest

from meridian_testlib import REPO, raw

DOC = REPO / "docs" / "compatibility" / "dynamodb.md"
MODEL = botocore.session.get_session().get_service_model("dynamodb")


def rows(section_title):
    """Table rows (lists of cells) under a `## ` section."""
    text = DOC.read_text()
    start = text.index(f"## {section_title}")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else len(text)]
    out = []
    for line in body.splitlines():
        if not line.startswith("|") or re.match(r"^\|[-| ]+\|$", line):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("Operation",):
            continue
        out.append(cells)
    return out


def operations():
    return {r[0]: r[1] for r in rows("Operations")}


def parameters():
    out = {}
    for op, param, status, *_ in rows("Parameters of the supported operations"):
        out.setdefault(op, {})[param] = status
    return out


def test_every_operation_is_listed_once():
    listed = [r[0] for r in rows("Operations")]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(MODEL.operation_names)
    assert set(operations().values()) <= {"supported", "unsupported"}


def test_parameters_of_supported_operations_are_listed():
    params = parameters()
    for op, status in operations().items():
        if status != "supported":
            assert op not in params, op
            continue
        shape = MODEL.operation_model(op).input_shape
        members = set(shape.members) if shape else set()
        assert set(params.get(op, {})) == members, op
        assert set(params.get(op, {}).values()) <= {"supported", "ignored", "refused"}, op


@pytest.mark.parametrize("op,status", sorted(operations().items()))
def test_operation_status_matches_server(region, op, status):
    code, _, body = raw(region.endpoint, op, {})
    kind = body.get("__type", "").rsplit("#", 1)[-1]
    if status == "supported":
        assert kind != "UnknownOperationException", (op, body)
    else:
        assert code == 400, (op, body)
        assert kind in ("UnknownOperationException", "ValidationException"), (op, body)


def test_refused_update_table_parameters_are_refused(region, ddb, table_name):
    from meridian_testlib import create_table
    create_table(ddb, table_name)
    for param, status in parameters()["UpdateTable"].items():
        if status != "refused":
            continue
        code, _, body = raw(region.endpoint, "UpdateTable", {"TableName": table_name, param: {}})
        assert code == 400, param
        assert body["__type"].endswith("#ValidationException"), param
        assert "not supported by Meridian" in body["message"], param
