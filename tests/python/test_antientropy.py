"""Anti-entropy: two regions whose copies of a table diverged (no replication running) compare
bucket digests and repair each other; afterwards their digests and items are identical and the
later write of a conflicting key wins. The regions share an admin token, as a cluster's do: the
repair presents it to its peer, and runs only against a configured peer, named."""

import json
import time
import urllib.error
import urllib.request

import pytest

from meridian_testlib import Region, create_table, make_token_file


def digest(region, table):
    return json.loads(region.get(f"/admin/ae/digest?table={table}"))


def scan_all(c, table):
    items = []
    for page in c.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return sorted(items, key=lambda i: i["pk"]["S"])


def test_anti_entropy_repairs_both_sides(tmp_path):
    token = make_token_file(tmp_path / "secrets" / "admin-token")
    b = Region(tmp_path / "b", name="ae-b", token_file=token).start()
    a = Region(tmp_path / "a", name="ae-a", token_file=token,
               extra_args=["--ae-peer", f"ae-b={b.endpoint}"]).start()
    try:
        ca, cb = a.client(), b.client()
        for c in (ca, cb):
            create_table(c, "ae_tbl")
        for i in range(300):
            ca.put_item(TableName="ae_tbl", Item={"pk": {"S": f"a{i}"}, "v": {"N": str(i)}})
        for i in range(200):
            cb.put_item(TableName="ae_tbl", Item={"pk": {"S": f"b{i}"}, "v": {"N": str(i)}})
        ca.put_item(TableName="ae_tbl", Item={"pk": {"S": "both"}, "v": {"S": "older"}})
        time.sleep(0.01)  # the second write must carry a later clock reading
        cb.put_item(TableName="ae_tbl", Item={"pk": {"S": "both"}, "v": {"S": "newer"}})
        ca.put_item(TableName="ae_tbl", Item={"pk": {"S": "gone"}})
        cb.put_item(TableName="ae_tbl", Item={"pk": {"S": "gone"}})
        time.sleep(0.01)
        ca.delete_item(TableName="ae_tbl", Key={"pk": {"S": "gone"}})  # a later delete wins
        assert digest(a, "ae_tbl")["digest"] != digest(b, "ae_tbl")["digest"]

        with pytest.raises(urllib.error.HTTPError) as e:
            a.post(f"/admin/anti-entropy?peer={b.endpoint}&table=ae_tbl")
        assert e.value.code == 400, "a URL is not a configured peer"
        report = a.post("/admin/anti-entropy?peer=ae-b&table=ae_tbl", timeout=60)
        t = report["tables"][0]
        assert t["converged"] is True
        assert t["buckets_differing"] > 0
        assert t["repaired_here"] >= 200 and t["repaired_there"] >= 300

        da, db = digest(a, "ae_tbl"), digest(b, "ae_tbl")
        assert da["digest"] == db["digest"] and da["items"] == db["items"] == 501
        assert scan_all(ca, "ae_tbl") == scan_all(cb, "ae_tbl")
        assert ca.get_item(TableName="ae_tbl", Key={"pk": {"S": "both"}})["Item"]["v"] == {"S": "newer"}
        assert "Item" not in cb.get_item(TableName="ae_tbl", Key={"pk": {"S": "gone"}})
        # a second run finds nothing to do
        again = a.post("/admin/anti-entropy?peer=ae-b&table=ae_tbl", timeout=60)["tables"][0]
        assert again["buckets_differing"] == 0 and again["converged"] is True
    finally:
        a.terminate()
        b.terminate()
