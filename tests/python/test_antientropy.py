"""Anti-entropy: two regions whose copies of a table diverged (no replication running) compare
bucket digests and repair each other; afterwards their digests and items are identical and the
later write of a conflicting key wins."""

import json
import time
import urllib.request

from meridian_testlib import Region, create_table


def post(url):
    req = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def digest(region, table):
    return json.loads(region.get(f"/admin/ae/digest?table={table}"))


def scan_all(c, table):
    items = []
    for page in c.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return sorted(items, key=lambda i: i["pk"]["S"])


def test_anti_entropy_repairs_both_sides(tmp_path):
    a = Region(tmp_path / "a", name="ae-a").start()
    b = Region(tmp_path / "b", name="ae-b").start()
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

        report = post(f"{a.endpoint}/admin/anti-entropy?peer={b.endpoint}&table=ae_tbl")
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
        again = post(f"{a.endpoint}/admin/anti-entropy?peer={b.endpoint}&table=ae_tbl")["tables"][0]
        assert again["buckets_differing"] == 0 and again["converged"] is True
    finally:
        a.terminate()
        b.terminate()
