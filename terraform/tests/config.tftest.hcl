# The configuration document the module writes into the bucket from `sources`, `plans` and `controls`, against a
# mocked AWS provider (see module.tftest.hcl for lambda_zip_path).

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name = "example-schemas"
  # README's three-source example: web passes its keys through, iOS has a separate valid key, the server source
  # has no plan (schema_id only).
  invalid_write_key = "shared-invalid"
  plans             = ["jaffle_shop"]
  sources = {
    web = { write_keys = ["web-key"] }
    ios = {
      write_keys        = ["ios-key-1", "ios-key-2"]
      valid_write_key   = "ios-valid"
      invalid_write_key = "ios-invalid"
      controls          = { violations = "omit", common_schema = { id = "common/Context/1-0.json" } }
    }
    server = { write_keys = ["server-key"], plans = [] }
  }
}

run "three_sources_are_rendered_into_the_document" {
  command = plan

  assert {
    condition = (
      keys(jsondecode(nonsensitive(aws_s3_object.config[0].content))) == ["invalid_write_key", "plans", "sources", "version"]
      && jsondecode(nonsensitive(aws_s3_object.config[0].content)).version == 1
      && jsondecode(nonsensitive(aws_s3_object.config[0].content)).plans == ["jaffle_shop"]
    )
    error_message = "The document must have version 1, the module's plans and shared invalid key, and the sources."
  }

  assert {
    condition = (
      jsondecode(nonsensitive(aws_s3_object.config[0].content)).sources.web == { write_keys = ["web-key"] }
      && jsondecode(nonsensitive(aws_s3_object.config[0].content)).sources.server == { write_keys = ["server-key"], plans = [] }
      && jsondecode(nonsensitive(aws_s3_object.config[0].content)).sources.ios.controls == {
        violations = "omit", common_schema = { id = "common/Context/1-0.json" }
      }
    )
    error_message = "A source's unset attributes (and controls) must be left out of the document, not written as null."
  }

  assert {
    condition     = aws_s3_object.config[0].key == "registry/config.json" && aws_s3_object.config[0].bucket == "example-schemas"
    error_message = "The document must be registry/config.json in the schema bucket."
  }

  assert {
    condition = nonsensitive(aws_lambda_function.this.environment[0].variables) == tomap({
      REGISTRY_BUCKET          = "example-schemas"
      REGISTRY_BUCKET_REGION   = "us-east-1"
      SCHEMA_PREFIX            = "schemas/"
      SPOOL_PREFIX             = "spool/"
      SEGMENT_API_HOST         = "https://api.segment.io"
      SCHEMA_CACHE_TTL_SECONDS = "60"
      DEBUG                    = "false"
      REGISTRY_CONFIG_KEY      = "registry/config.json"
    })
    error_message = "With sources the Lambda gets the document's key and none of the key variables."
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ReadConfig"][0].resources == toset(["arn:aws:s3:::example-schemas/registry/config.json"])
    error_message = "The Lambda may read the document and nothing else outside the schema prefix."
  }

  assert {
    condition     = one([for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ListOwnPrefixes"][0].condition).values == tolist(["schemas/*", "registry/schemas/index.json", "registry/config.json", "spool/*"])
    error_message = "ListBucket must cover the document too, so a missing one is a 404, not a 403."
  }
}

run "no_document_without_sources_plans_or_controls" {
  command = plan

  variables {
    sources                   = {}
    plans                     = []
    invalid_write_key         = null
    registry_write_keys       = ["wk-web"]
    valid_segment_write_key   = "valid-key"
    invalid_segment_write_key = "invalid-key"
  }

  assert {
    condition     = length(aws_s3_object.config) == 0 && !contains(keys(nonsensitive(aws_lambda_function.this.environment[0].variables)), "REGISTRY_CONFIG_KEY")
    error_message = "The one-pair setup must stay as it was: no document, no REGISTRY_CONFIG_KEY."
  }

  assert {
    condition     = length([for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ReadConfig"]) == 0
    error_message = "Without a document the Lambda needs no access to one."
  }
}

run "plans_and_controls_alone_keep_the_environments_source" {
  command = plan

  variables {
    sources                   = {}
    invalid_write_key         = null
    controls                  = { unplanned_events = "allow" }
    registry_write_keys       = ["wk-web"]
    valid_segment_write_key   = "valid-key"
    invalid_segment_write_key = "invalid-key"
  }

  assert {
    condition     = jsondecode(aws_s3_object.config[0].content) == { version = 1, plans = ["jaffle_shop"], controls = { unplanned_events = "allow" } }
    error_message = "A document without sources holds only the plans and controls."
  }

  assert {
    condition = (
      nonsensitive(aws_lambda_function.this.environment[0].variables["REGISTRY_WRITE_KEYS"]) == "wk-web"
      && aws_lambda_function.this.environment[0].variables["REGISTRY_CONFIG_KEY"] == "registry/config.json"
    )
    error_message = "The environment's keys stay, beside the document's key."
  }
}

run "rejects_one_key_under_two_sources" {
  command = plan

  variables {
    sources = {
      web = { write_keys = ["shared-key"] }
      ios = { write_keys = ["shared-key"] }
    }
  }

  expect_failures = [aws_s3_object.config]
}

run "rejects_sources_beside_the_key_variables" {
  command = plan

  variables {
    registry_write_keys = ["wk-web"]
  }

  expect_failures = [aws_s3_object.config]
}

run "rejects_a_source_without_an_invalid_destination" {
  command = plan

  variables {
    invalid_write_key = null
    sources           = { web = { write_keys = ["web-key"] } }
  }

  expect_failures = [aws_s3_object.config]
}

run "rejects_a_default_source_that_is_not_a_source" {
  command = plan

  variables {
    default_source = "android"
  }

  expect_failures = [aws_s3_object.config]
}

run "rejects_bad_source_values" {
  command = plan

  variables {
    plans    = ["not a plan"]
    controls = { violations = "warn" }
    sources = {
      "web app" = { write_keys = [], controls = { unplanned_events = "drop" } }
    }
  }

  expect_failures = [var.plans, var.controls, var.sources]
}

run "rejects_neither_sources_nor_keys" {
  command = plan

  variables {
    sources           = {}
    plans             = []
    invalid_write_key = null
  }

  expect_failures = [aws_lambda_function.this]
}
