"""The Terraform module: formatting, validation, `terraform test` against a mocked AWS provider, and checkov.

Terraform runs on a copy of terraform/ in a temporary folder, so neither .terraform/ nor a lock file ever lands in
the repository. It installs hashicorp/aws from the filesystem mirror when the machine has one (offline), and
otherwise the normal way: from the registry, or as the user's own CLI configuration says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "terraform"
EXAMPLE = Path("examples") / "complete"
MIRROR = Path(os.environ.get("TF_PROVIDER_MIRROR", "/opt/tf-plugins"))
AWS_PROVIDER = MIRROR / "registry.terraform.io" / "hashicorp" / "aws"
TERRAFORM_TIMEOUT_SECONDS = 300
# How `terraform init` says it could not get a provider (as opposed to finding the configuration wrong).
PROVIDER_UNAVAILABLE = ("Failed to query available provider packages", "Failed to install provider")
# Enough of init's error to name the cause in a one-line skip reason.
MESSAGE_CHARS = 300
# Settings a user may keep for the normal installation: their CLI configuration and plugin cache.
USER_TF_SETTINGS = ("TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")
# The module's inputs without defaults, for test files written here.
REQUIRED_VARIABLES = {
    "registry_write_keys": ["wk"],
    "valid_segment_write_key": "valid-key",
    "invalid_segment_write_key": "invalid-key",
}

pytestmark = pytest.mark.terraform


def terraform_binary() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not on PATH: install Terraform >= 1.9 (README, Development)")
    return path


@dataclass(frozen=True)
class Workspace:
    root: Path  # the copy of terraform/
    env: dict[str, str]
    zip_path: Path  # a placeholder deployment zip: the module hashes the file at plan time

    def terraform(self, *args: str, cwd: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [terraform_binary(), *args],
            cwd=cwd or self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=TERRAFORM_TIMEOUT_SECONDS,
        )

    def test(self, *args: str, moto_url: str | None = None) -> subprocess.CompletedProcess[str]:
        """`terraform test`; the gate's local-exec reads the bucket at `moto_url` (a moto server) when given."""
        moto = {"AWS_ENDPOINT_URL_S3": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        env = {**self.env, **moto} if moto_url else self.env
        return self.terraform("test", "-no-color", f"-var=lambda_zip_path={self.zip_path}", *args, env=env)

    def write_test(self, folder: str, command: str, **variables: object) -> str:
        """Writes a test file with one `command` run into `folder` and returns the folder, for `-test-directory`."""
        values = {**REQUIRED_VARIABLES, **variables}
        settings = "\n".join(f"    {key} = {json.dumps(value)}" for key, value in values.items())
        (self.root / folder).mkdir()
        (self.root / folder / "run.tftest.hcl").write_text(
            'mock_provider "aws" {\n  source = "./tests/mocks"\n}\n\n'
            f'run "{command}" {{\n  command = {command}\n\n  variables {{\n{settings}\n  }}\n}}\n'
        )
        return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    terraform_binary()
    base = tmp_path_factory.mktemp("terraform")
    root = base / "terraform"
    shutil.copytree(MODULE, root, ignore=shutil.ignore_patterns(".terraform*", "terraform.tfstate*"))
    # The schema check imports reflekt_registry from ../function, as it does in the repository.
    (base / "function").symlink_to(REPO / "function")
    zip_path = base / "placeholder.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("reflekt_registry/handler.py", "")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env.update(provider_installation(base), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    workspace = Workspace(root, env, zip_path)
    for folder in (root, root / EXAMPLE):
        init = workspace.terraform("init", "-backend=false", "-no-color", cwd=folder)
        output = init.stdout + init.stderr
        if init.returncode != 0 and not AWS_PROVIDER.is_dir() and any(text in output for text in PROVIDER_UNAVAILABLE):
            error = " ".join(output[output.find("Error:"):].split())
            pytest.skip(f"no hashicorp/aws provider in a mirror at {AWS_PROVIDER} (set TF_PROVIDER_MIRROR), and "
                        f"terraform init could not install it the normal way: {error[:MESSAGE_CHARS]}")
        assert init.returncode == 0, output
    return workspace


def provider_installation(base: Path) -> dict[str, str]:
    """The environment that makes `terraform init` install hashicorp/aws: from the filesystem mirror, offline, when
    there is one; else the normal way, keeping the user's own CLI configuration and plugin cache."""
    if not AWS_PROVIDER.is_dir():
        return {name: os.environ[name] for name in USER_TF_SETTINGS if name in os.environ}
    cli_config = base / "terraformrc"
    cli_config.write_text(textwrap.dedent(f"""\
        provider_installation {{
          filesystem_mirror {{
            path    = "{MIRROR}"
            include = ["registry.terraform.io/hashicorp/*"]
          }}
        }}
        """))
    return {"TF_CLI_CONFIG_FILE": str(cli_config)}


def test_files_are_formatted() -> None:
    # -check writes nothing, so this runs on the repository's own files and names them.
    result = subprocess.run([terraform_binary(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(MODULE)],
                            capture_output=True, text=True, timeout=TERRAFORM_TIMEOUT_SECONDS)
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"


def declared_variables() -> dict[str, tuple[str, str]]:
    """Each variable the module's files declare: its type, with object attributes shortened to {...} as the README
    writes them, and its default, as written."""
    declared = {}
    for path in sorted(MODULE.glob("*.tf")):
        for name, body in re.findall(r'^variable "(\w+)" \{\n(.*?)^\}', path.read_text(), re.M | re.S):
            type_text = re.search(r"^  type\s*=\s*", body, re.M)
            default = re.search(r"^  default\s*=\s*(.+)$", body, re.M)
            assert type_text and default, f"{path.name}: variable {name} needs a type and a default for the README"
            declared[name] = (shortened(one_expression(body[type_text.end():])), default.group(1).strip())
    return declared


def one_expression(text: str) -> str:
    """The HCL expression that opens `text`: up to the first line break outside brackets."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if char == "\n" and depth == 0:
            return text[:i]
    return text


def shortened(type_text: str) -> str:
    kept, depth = [], 0
    for char in type_text:
        if char == "{":
            kept.append("{..." if depth == 0 else "")
            depth += 1
        elif char == "}":
            depth -= 1
            kept.append("}" if depth == 0 else "")
        elif depth == 0 and not char.isspace():
            kept.append(char)
    return "".join(kept)


def test_the_readme_lists_every_input_with_its_type_and_default() -> None:
    """terraform/README.md's Inputs table is the module's reference: a variable added or changed without it shows."""
    readme = (MODULE / "README.md").read_text()
    section = readme.split("\n## Inputs\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(.+?)` \| `(.+?)` \|", section, re.M)
    assert {name: (type_text, default) for name, type_text, default in rows} == declared_variables()
    assert len(rows) == len(declared_variables()), "a variable is listed twice"


@pytest.mark.parametrize("folder", [Path("."), EXAMPLE], ids=["module", "example"])
def test_configuration_is_valid(workspace: Workspace, folder: Path) -> None:
    result = workspace.terraform("validate", "-no-color", cwd=workspace.root / folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_test_passes(workspace: Workspace) -> None:
    # Every run block in terraform/tests/ must have passed: a test file terraform skipped or could not load must
    # not pass for a success.
    runs = sum(len(re.findall(r'^run\s+"', path.read_text(), re.M)) for path in (MODULE / "tests").glob("*.tftest.hcl"))
    result = workspace.test()
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs > 0
    assert f"Success! {runs} passed, 0 failed." in result.stdout, result.stdout


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr with Terraform's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("schemas-wrong-id", '"$id" is "checkout/Order_Completed/1-1.json"'),
        ("schemas-wrong-version", 'self.version is "1-1"; the file must be named after it'),
        ("schemas-unsupported-draft", '"$schema" is "https://json-schema.org/draft/2020-12/schema"'),
        ("schemas-not-json", "is not valid JSON"),
    ],
)
def test_a_bad_schema_fails_the_plan_naming_the_file(workspace: Workspace, fixture: str, reason: str) -> None:
    folder = workspace.write_test(f"plan-{fixture}", "plan", schemas_dir=f"tests/fixtures/{fixture}")
    result = workspace.test(f"-test-directory={folder}")
    assert result.returncode != 0
    output = output_of(result)
    assert "Resource precondition failed" in output
    assert f"tests/fixtures/{fixture}/checkout/Order_Completed/1-0.json" in output
    assert reason in output


CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"certificate_arn": CERTIFICATE_ARN}, "certificate_arn is set but domain_name is not"),
        ({"domain_name": "events.example.com"}, "certificate_arn is required when domain_name is set"),
        ({"domain_name": "events.example.com", "certificate_arn": CERTIFICATE_ARN, "endpoint_type": "function_url"},
         "a Lambda function URL takes a custom domain only through a CloudFront distribution"),
        ({"route53_zone_id": "Z0123456789ABCDEFGHIJ"}, "route53_zone_id is set but domain_name is not"),
        ({"domain_name": "Events.example.com", "certificate_arn": CERTIFICATE_ARN},
         "domain_name must be a lower-case hostname"),
        ({"domain_name": "events.example.com", "certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"},
         "certificate_arn must be an ACM certificate ARN"),
        ({"domain_name": "events.example.com", "certificate_arn": CERTIFICATE_ARN, "route53_zone_id": "/hostedzone/Z01"},
         "route53_zone_id must be a Route 53 hosted zone ID"),
        ({"domain_name": "events.example.com", "certificate_arn": CERTIFICATE_ARN.replace("us-east-1", "eu-west-1")},
         "certificate_arn is in eu-west-1, but the API is in us-east-1"),
        ({"schema_prefix": "registry/"}, 'schema_prefix ("registry/") holds registry/registry/index.json (the schema index)'),
        ({"schema_prefix": "spool/"}, 'schema_prefix ("spool/") and spool_prefix ("spool/") overlap'),
    ],
    ids=["certificate-without-domain", "domain-without-certificate", "domain-with-function-url", "zone-without-domain",
         "domain-not-lower-case", "certificate-not-acm", "zone-id-with-path", "certificate-in-another-region",
         "schema-prefix-over-the-index", "schema-prefix-over-the-spool"],
)
def test_a_bad_input_fails_the_plan_saying_why(workspace: Workspace, variables: dict[str, str], message: str,
                                                      request: pytest.FixtureRequest) -> None:
    folder = workspace.write_test(f"plan-{request.node.callspec.id}", "plan", **variables)
    result = workspace.test(f"-test-directory={folder}")
    assert result.returncode != 0
    assert message in output_of(result)


GATE_BUCKET = "example-schemas"
ORDER = "checkout/Order_Completed/1-0.json"


@pytest.fixture
def gate_bucket(moto_url: str):
    """The bucket the gate compares with, in a moto server; the mocked provider never writes to it."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=GATE_BUCKET)
    return s3


def apply_gate(workspace: Workspace, moto_url: str, name: str, fixture: str, **variables: object):
    # An apply against the mocked provider still runs the local-exec gate, here with the dev venv's Python.
    folder = workspace.write_test(name, "apply", schemas_dir=f"tests/fixtures/{fixture}", bucket_name=GATE_BUCKET,
                                  schemas_check_python=sys.executable, **variables)
    return workspace.test(f"-test-directory={folder}", moto_url=moto_url)


@pytest.mark.parametrize(("fixture", "passes"), [("schemas", True), ("schemas-invalid-keyword", False)])
def test_the_publish_check_runs_on_apply(workspace: Workspace, gate_bucket, moto_url: str, fixture: str,
                                         passes: bool) -> None:
    result = apply_gate(workspace, moto_url, f"apply-{fixture}", fixture)
    assert (result.returncode == 0) is passes, output_of(result)
    if not passes:
        assert f"tests/fixtures/{fixture}/{ORDER}" in output_of(result)


def test_the_gate_on_apply_refuses_changing_a_published_version_unless_forced(
    workspace: Workspace, gate_bucket, moto_url: str,
) -> None:
    # GIVEN the bucket's 1-0 had an optional coupon the project's 1-0 no longer has (its object is closed)
    published = json.loads((MODULE / "tests/fixtures/schemas" / ORDER).read_text())
    published["properties"]["coupon"] = {"type": "string", "description": "A coupon."}
    gate_bucket.put_object(Bucket=GATE_BUCKET, Key=f"schemas/{ORDER}", Body=json.dumps(published).encode())
    # THEN the apply fails naming the schema, the path and the rule
    refused = output_of(apply_gate(workspace, moto_url, "apply-changed", "schemas"))
    assert f"{ORDER}: refused" in refused and "a published version is immutable" in refused
    assert "$.properties.coupon: removed from an object that allows no other property" in refused
    # AND a recorded reason lets it through
    forced = apply_gate(workspace, moto_url, "apply-forced", "schemas",
                        schemas_force={ORDER: "INC-42: coupon was never sent"})
    assert forced.returncode == 0, output_of(forced)


def test_schemas_wait_for_the_check_and_the_bucket_set_up(workspace: Workspace) -> None:
    graph = workspace.terraform("graph")
    assert graph.returncode == 0, graph.stderr
    for dependency in ("terraform_data.schemas_check", "aws_s3_bucket_versioning.this",
                       "aws_s3_bucket_server_side_encryption_configuration.this", "aws_s3_bucket_policy.this"):
        assert f'"aws_s3_object.schema" -> "{dependency}"' in graph.stdout


def test_the_document_waits_for_the_buckets_protections(workspace: Workspace) -> None:
    """Written into a bucket already versioned (a bad document can be rolled back), encrypted and TLS-only."""
    graph = workspace.terraform("graph")
    assert graph.returncode == 0, graph.stderr
    # The policy itself waits for the public access block.
    for protection in ("aws_s3_bucket_versioning.this", "aws_s3_bucket_server_side_encryption_configuration.this",
                       "aws_s3_bucket_policy.this"):
        assert f'"aws_s3_object.config" -> "{protection}"' in graph.stdout
    assert '"aws_lambda_function.this" -> "aws_s3_object.config"' in graph.stdout


def checkov_binary() -> str | None:
    return shutil.which("checkov") or shutil.which("checkov", path=str(Path(sys.executable).parent))


def test_checkov_finds_nothing_unexplained() -> None:
    checkov = checkov_binary()
    if checkov is None:
        pytest.skip("checkov is not installed (pip install checkov to run this check)")
    # --skip-download keeps checkov offline; skips are the #checkov:skip comments in the resources.
    command = [checkov, "--directory", str(MODULE), "--framework", "terraform", "--compact", "--quiet",
               "--skip-download"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TERRAFORM_TIMEOUT_SECONDS)
    assert result.returncode == 0, result.stdout + result.stderr
