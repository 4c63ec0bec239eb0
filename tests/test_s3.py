"""s3.py: SigV4 as AWS's published test vectors and botocore's signer define it, addressing, and the client against
moto running as a real HTTP server."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from reflekt_registry.config import Credentials, S3Endpoint
from reflekt_registry.errors import S3Error
from reflekt_registry.retry import RetryPolicy
from reflekt_registry.s3 import (ListedObject, NotModified, S3Client, StoredObject, authorization, is_virtual_host_compatible,
                                 object_url, signed_request)

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "sigv4_vectors.json").read_text())
BUCKET = "registry-bucket"
REGION = "us-east-1"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


# -- AWS's Signature Version 4 test suite ----------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda vector: vector["name"])
def test_the_signature_matches_aws_test_suite(vector):
    import hashlib

    credentials = Credentials(VECTORS["access_key_id"], VECTORS["secret_access_key"])
    amz_date = dict((name.lower(), value) for name, value in vector["headers"])["x-amz-date"]
    header = authorization(vector["method"], vector["path"], [tuple(pair) for pair in vector["query"]],
                           [tuple(pair) for pair in vector["headers"]], hashlib.sha256(vector["body"].encode()).hexdigest(),
                           credentials, VECTORS["region"], VECTORS["service"], amz_date)
    assert header == (f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{amz_date[:8]}/{VECTORS['region']}/"
                      f"{VECTORS['service']}/aws4_request, SignedHeaders={vector['signed_headers']}, "
                      f"Signature={vector['signature']}")


# -- botocore's signer on generated requests -------------------------------------------------------------------------

# Keys S3 takes: any text, but without the '.' and '..' segments signed_request refuses.
keys = st.text(min_size=1, max_size=60).filter(lambda key: not {".", ".."} & set(key.split("/")))
texts = st.text(max_size=20)
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).map(lambda name: "x-amz-meta-" + name)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
endpoints = st.builds(S3Endpoint, st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1"]),
                      st.sampled_from([None, "http://127.0.0.1:9000", "https://minio.example.com"]),
                      st.sampled_from(["auto", "path", "virtual"]))
credentials = st.builds(Credentials, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=20),
                        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
                        st.none() | st.text(alphabet="abcdefABCDEF0123456789+/=", min_size=1, max_size=80))
buckets = st.sampled_from([BUCKET, "my.dotted.bucket", "a1b", "Upper-Case-Legacy"])


@settings(max_examples=300, deadline=None)
@given(endpoint=endpoints, credentials=credentials, bucket=buckets, key=keys,
       method=st.sampled_from(["GET", "PUT", "DELETE"]),
       query=st.lists(st.tuples(texts, texts), max_size=4),
       headers=st.dictionaries(header_names, header_values, max_size=3),
       body=st.binary(max_size=64),
       epoch=st.integers(min_value=0, max_value=4_102_444_800))
def test_the_signature_matches_botocore(endpoint, credentials, bucket, key, method, query, headers, body, epoch):
    url, signed = signed_request(endpoint, credentials, epoch, method, bucket, key, query, headers, body)
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: value for name, value in signed.items() if name != "Authorization"})
    request.context["payload_signing_enabled"] = True  # botocore's choice for S3 over http; the registry always signs it
    signer = S3SigV4Auth(BotocoreCredentials(*credentials), "s3", endpoint.region)
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda *args, **kwargs: moment)
        signer.add_auth(request)
    assert signed["Authorization"] == request.headers["Authorization"]


# -- Addressing ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint,bucket,expected", [
    (S3Endpoint("eu-west-1"), "schemas", ("https://schemas.s3.eu-west-1.amazonaws.com", "schemas.s3.eu-west-1.amazonaws.com", "/k/1.json")),
    (S3Endpoint("eu-west-1"), "my.schemas", ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", "/my.schemas/k/1.json")),
    (S3Endpoint("cn-north-1"), "schemas", ("https://schemas.s3.cn-north-1.amazonaws.com.cn", "schemas.s3.cn-north-1.amazonaws.com.cn", "/k/1.json")),
    (S3Endpoint("eu-west-1", addressing_style="path"), "schemas", ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", "/schemas/k/1.json")),
    (S3Endpoint("us-east-1", "http://127.0.0.1:9000"), "schemas", ("http://127.0.0.1:9000", "127.0.0.1:9000", "/schemas/k/1.json")),
    (S3Endpoint("us-east-1", "https://s3.example.com", "virtual"), "schemas", ("https://schemas.s3.example.com", "schemas.s3.example.com", "/k/1.json")),
], ids=["aws-virtual", "aws-dotted-bucket-path", "china", "aws-forced-path", "custom-endpoint-path", "custom-endpoint-virtual"])
def test_addressing(endpoint, bucket, expected):
    """AWS gets virtual-hosted URLs unless the bucket cannot be a TLS host label; custom endpoints get path-style."""
    assert object_url(endpoint, bucket, "k/1.json") == expected


@pytest.mark.parametrize("bucket,compatible", [("schemas", True), ("my-schemas-1", True), ("my.schemas", False),
                                               ("UPPER", False), ("-dash", False), ("ab", False), ("a" * 64, False)])
def test_virtual_host_compatibility(bucket, compatible):
    assert is_virtual_host_compatible(bucket) is compatible


def test_a_key_with_dot_segments_is_refused():
    """urllib3 would resolve '..' away before sending, so the signed path and the sent one would differ."""
    with pytest.raises(ValueError, match="'..'"):
        signed_request(S3Endpoint(REGION), CREDENTIALS, 0, "GET", BUCKET, "a/../b", [], {}, b"")


def test_the_session_token_is_signed():
    """The Lambda's role credentials are temporary: their token travels in a signed header."""
    _, signed = signed_request(S3Endpoint(REGION), Credentials("AKID", "secret", "token-1"), 0, "GET", BUCKET, "k", [], {}, b"")
    assert signed["X-Amz-Security-Token"] == "token-1"
    assert "x-amz-security-token" in signed["Authorization"]


def test_credentials_never_show_their_secret():
    shown = repr(Credentials("AKIDEXAMPLE", "s3cr3t-value", "t0ken-value"))
    assert "AKIDEXAMPLE" in shown and "s3cr3t-value" not in shown and "t0ken-value" not in shown


# -- Against moto running as a server --------------------------------------------------------------------------------

@pytest.fixture
def s3(moto_url):
    """A boto3 client for setting up and checking the bucket, as a user's tools would."""
    client = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def client(moto_url) -> S3Client:
    return S3Client(S3Endpoint(REGION, moto_url), Credentials("testing", "testing", "session-token"))


def test_get_returns_the_body_and_etag(s3, client):
    s3.put_object(Bucket=BUCKET, Key="schemas/a b/ሴ.json", Body=b"{}")
    got = client.get(BUCKET, "schemas/a b/ሴ.json")
    assert got == StoredObject(b"{}", s3.head_object(Bucket=BUCKET, Key="schemas/a b/ሴ.json")["ETag"])


def test_a_conditional_get_is_not_modified_until_the_object_changes(s3, client):
    s3.put_object(Bucket=BUCKET, Key="k.json", Body=b"1")
    first = client.get(BUCKET, "k.json")
    assert client.get(BUCKET, "k.json", if_none_match=first.etag) == NotModified(first.etag)
    s3.put_object(Bucket=BUCKET, Key="k.json", Body=b"2")
    assert client.get(BUCKET, "k.json", if_none_match=first.etag).body == b"2"


def test_a_missing_key_is_none_and_a_missing_bucket_an_error(s3, client):
    assert client.get(BUCKET, "absent.json") is None
    with pytest.raises(S3Error, match=r"GET s3://no-such-bucket/k.json with HTTP 404 \(NoSuchBucket\)"):
        client.get("no-such-bucket", "k.json")


def test_list_follows_continuation_tokens_lazily(s3, client, monkeypatch):
    for index in range(7):
        s3.put_object(Bucket=BUCKET, Key=f"schemas/{index}.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="other/x.json", Body=b"{}")
    requests = []
    real = client.pool.request
    monkeypatch.setattr(client.pool, "request", lambda *a, **k: requests.append(a) or real(*a, **k))
    listing = client.list(BUCKET, "schemas/", page_keys=3)
    assert [next(listing).key for _ in range(3)] == ["schemas/0.json", "schemas/1.json", "schemas/2.json"]
    assert len(requests) == 1  # the next page is asked for only when read
    rest = list(listing)
    assert [item.key for item in rest] == [f"schemas/{i}.json" for i in range(3, 7)]
    assert len(requests) == 3
    assert all(isinstance(item, ListedObject) and item.size == 2 and item.etag.startswith('"') for item in rest)


def test_list_with_a_delimiter_leaves_out_what_is_in_folders(s3, client):
    for key in ("spool/a.jsonl", "spool/b.jsonl", "spool/lock/drain", "spool/rejected/c.jsonl"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert [item.key for item in client.list(BUCKET, "spool/", delimiter="/")] == ["spool/a.jsonl", "spool/b.jsonl"]
    assert len(list(client.list(BUCKET, "spool/"))) == 4


def test_put_then_delete(s3, client):
    etag = client.put(BUCKET, "spool/batch-1.json", b'{"batch":[]}')
    stored = s3.get_object(Bucket=BUCKET, Key="spool/batch-1.json")
    assert (stored["Body"].read(), stored["ETag"], stored["ContentType"]) == (b'{"batch":[]}', etag, "application/json")
    client.delete(BUCKET, "spool/batch-1.json")
    client.delete(BUCKET, "spool/batch-1.json")  # deleting what is gone is not an error
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_conditional_puts_create_once_and_swap_only_the_expected_version(s3, client):
    """What a lock needs: If-None-Match "*" creates only; If-Match replaces only the version read."""
    first = client.put(BUCKET, "spool/.lock", b"a", if_none_match="*")
    assert first and client.put(BUCKET, "spool/.lock", b"b", if_none_match="*") is None
    second = client.put(BUCKET, "spool/.lock", b"c", if_match=first)
    assert second and second != first
    assert client.put(BUCKET, "spool/.lock", b"d", if_match=first) is None
    assert client.get(BUCKET, "spool/.lock").body == b"c"


def test_an_unreachable_endpoint_is_an_s3_error_after_the_allowed_attempts(clock):
    """Nothing listens on port 9 here: every attempt is refused, then S3Error names the object and the failure."""
    client = S3Client(S3Endpoint(REGION, "http://127.0.0.1:9"), CREDENTIALS,
                      RetryPolicy(attempts=3, budget=10, backoff_base=0.1, jitter=0), clock=clock, sleep=clock.sleep)
    with pytest.raises(S3Error, match=r"cannot reach S3 for GET s3://registry-bucket/k.json within 10 s: .*Error"):
        client.get(BUCKET, "k.json")
    assert clock.sleeps == [0.1, 0.2]


def test_a_client_needs_a_region():
    with pytest.raises(ValueError, match="region"):
        S3Client(S3Endpoint(None), CREDENTIALS)
