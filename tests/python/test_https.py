"""HTTPS on the DynamoDB port and at the gateway: with a certificate, the region and the gateway
serve TLS only, and unchanged clients — boto3 and the AWS CLI — work with an https endpoint and
the CA bundle; a client that does not trust the CA, or speaks plaintext, gets nothing."""

import json
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from meridian_testlib import BIN, client, create_table, wait_until
from traffic_testlib import Gateway, http


@pytest.fixture
def pki(tmp_path):
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path / "pki"
    d.mkdir()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    os.chmod(d / "key.pem", 0o600)
    (d / "cert.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    return d


def start_https_region(tmp_path, pki):
    log = open(tmp_path / "region.log", "ab")
    proc = subprocess.Popen(
        [str(BIN), "region", "--region", "tls-r", "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path / "data"),
         "--https-cert", str(pki / "cert.pem"), "--https-key", str(pki / "key.pem")],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = {}
    t = threading.Thread(target=lambda: line.update(v=proc.stdout.readline()), daemon=True)
    t.start()
    t.join(20)
    m = re.search(r"listening on https://([0-9.]+):(\d+)", line.get("v", ""))
    if not m:
        proc.kill()
        raise AssertionError(f"region did not start: {line.get('v')!r}")
    return proc, f"https://127.0.0.1:{m.group(2)}"


def test_the_region_serves_https_to_boto3_and_the_aws_cli(tmp_path, pki):
    proc, endpoint = start_https_region(tmp_path, pki)
    try:
        import boto3
        from botocore.config import Config
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="meridian", aws_secret_access_key="meridian",
                           verify=str(pki / "ca.pem"),
                           config=Config(retries={"max_attempts": 0}))
        create_table(ddb, "secure")
        ddb.put_item(TableName="secure", Item={"pk": {"S": "a"}, "v": {"S": "over tls"}})
        assert ddb.get_item(TableName="secure", Key={"pk": {"S": "a"}})["Item"]["v"]["S"] == "over tls"
        env = dict(os.environ, AWS_ACCESS_KEY_ID="meridian", AWS_SECRET_ACCESS_KEY="meridian",
                   AWS_DEFAULT_REGION="us-east-1")
        out = subprocess.run(["aws", "dynamodb", "list-tables", "--endpoint-url", endpoint,
                              "--ca-bundle", str(pki / "ca.pem")],
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["TableNames"] == ["secure"]
        # a client that does not trust the CA is refused by its own verification
        with pytest.raises(urllib.error.URLError) as e:
            urllib.request.urlopen(endpoint + "/health", timeout=5,
                                   context=ssl.create_default_context())
        assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)
        ok = urllib.request.urlopen(endpoint + "/health", timeout=5,
                                    context=ssl.create_default_context(cafile=str(pki / "ca.pem")))
        assert ok.status == 200
        # no plaintext on the HTTPS port
        with pytest.raises(Exception):
            urllib.request.urlopen(endpoint.replace("https", "http") + "/health", timeout=5).read()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_region_refuses_a_world_readable_https_key(tmp_path, pki):
    os.chmod(pki / "key.pem", 0o644)
    with pytest.raises(AssertionError):
        start_https_region(tmp_path, pki)
    assert "readable by every user" in (tmp_path / "region.log").read_text()


def test_the_gateway_serves_https(tmp_path, pki):
    from meridian_testlib import Region
    region = Region(tmp_path / "region", name="us-east").start()
    body = (f'tls_cert = "{pki / "cert.pem"}"\ntls_key = "{pki / "key.pem"}"\n[health]\n'
            f'[[health.endpoints]]\nname = "us-east"\nhttp_url = "{region.endpoint}/health"\n'
            f'[[regions]]\nname = "us-east"\nendpoint = "{region.endpoint}"\n')
    gw = Gateway(tmp_path / "gw", body).start()
    try:
        import boto3
        endpoint = f"https://127.0.0.1:{gw.port}"
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="meridian", aws_secret_access_key="meridian",
                           verify=str(pki / "ca.pem"))
        create_table(ddb, "viagw")
        ddb.put_item(TableName="viagw", Item={"pk": {"S": "k"}})
        wait_until(lambda: "Item" in region.client().get_item(TableName="viagw",
                                                              Key={"pk": {"S": "k"}}),
                   timeout=5, what="the write reached the region through the HTTPS gateway")
    finally:
        gw.stop()
        region.kill()


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path, pki):
    # The operator replaces the certificate and key files (here: from another CA); new
    # connections get the new pair within seconds. A broken replacement is not taken: the
    # pair in use stays.
    import trustme
    proc, endpoint = start_https_region(tmp_path, pki)
    try:
        def serves_for(ca_file):
            try:
                ctx = ssl.create_default_context(cafile=str(ca_file))
                return urllib.request.urlopen(endpoint + "/health", timeout=3, context=ctx).status == 200
            except (urllib.error.URLError, ssl.SSLError):
                return False

        assert serves_for(pki / "ca.pem")
        new_ca = trustme.CA()
        new = new_ca.issue_cert("127.0.0.1")
        new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))
        staged_cert, staged_key = pki / "cert.pem.new", pki / "key.pem.new"
        staged_cert.write_bytes(b"".join(b.bytes() for b in new.cert_chain_pems))
        new.private_key_pem.write_to_path(str(staged_key))
        os.chmod(staged_key, 0o600)
        os.replace(staged_key, pki / "key.pem")
        os.replace(staged_cert, pki / "cert.pem")
        wait_until(lambda: serves_for(tmp_path / "new-ca.pem"), timeout=10, interval=0.2,
                   what="the renewed certificate served")
        assert not serves_for(pki / "ca.pem")
        # a half-written certificate is not taken
        (pki / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\ntruncated")
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert serves_for(tmp_path / "new-ca.pem")
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_gateway_reaches_https_regions_and_checks_their_certificates(tmp_path, pki):
    # A region on another machine serves HTTPS only; the gateway forwards to it and health
    # checks it over TLS, trusting the CA it is given, and nothing else.
    proc, endpoint = start_https_region(tmp_path, pki)

    def gateway(name, ca):
        body = (f'region_ca = "{ca}"\n[health]\nca_file = "{ca}"\n'
                f'[[health.endpoints]]\nname = "us-east"\nhttp_url = "{endpoint}/health"\n'
                f'[[regions]]\nname = "us-east"\nendpoint = "{endpoint}"\n')
        return Gateway(tmp_path / name, body).start()

    import trustme
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    gw = gateway("gw", pki / "ca.pem")
    wrong = gateway("gw-wrong", other)
    try:
        ddb = client(gw.endpoint)
        create_table(ddb, "tlsup")
        ddb.put_item(TableName="tlsup", Item={"pk": {"S": "k"}})
        assert "Item" in ddb.get_item(TableName="tlsup", Key={"pk": {"S": "k"}})

        def healthy(g):
            status = http("GET", g.admin + "/admin/status")[1]
            return status["health"]["endpoints"]["us-east"]["checks_healthy"]

        wait_until(lambda: healthy(gw), timeout=10, what="the HTTPS region healthy at the gateway")
        # a gateway that does not trust the region's CA neither forwards nor calls it healthy
        wait_until(lambda: not healthy(wrong), timeout=10, what="the region unhealthy without its CA")
        with pytest.raises(Exception) as e:
            client(wrong.endpoint).list_tables()
        assert "ServiceUnavailable" in str(e.value) or "503" in str(e.value), e.value
    finally:
        gw.stop()
        wrong.stop()
        proc.kill()
        proc.wait(timeout=10)
