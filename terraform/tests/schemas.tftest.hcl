# Publishing a Reflekt project's schemas/ folder (schemas_dir), planned against a mocked AWS provider.
# The local-exec gate (publish --check) only runs on apply, so these runs exercise the plan-time preconditions and the
# command the gate is given; tests/test_terraform.py applies against a moto S3 to run the gate itself.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name               = "example-schemas"
  registry_write_keys       = ["wk"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
}

run "publishes_nothing_by_default" {
  command = plan

  assert {
    condition     = length(aws_s3_object.schema) == 0 && length(terraform_data.schemas_check) == 0 && length(aws_s3_object.schema_index) == 0
    error_message = "Without schemas_dir nothing may be published or checked."
  }
}

run "publishes_each_schema_under_the_prefix" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas"
  }

  assert {
    condition = { for path, object in aws_s3_object.schema : path => object.key } == {
      "checkout/Group/1-0.json"           = "schemas/checkout/Group/1-0.json"
      "checkout/Identify/1-0.json"        = "schemas/checkout/Identify/1-0.json"
      "checkout/Order_Completed/1-0.json" = "schemas/checkout/Order_Completed/1-0.json"
    }
    error_message = "Each schema must be uploaded to <schema_prefix><path under schemas_dir>, skipping .reflekt/."
  }

  assert {
    condition = alltrue([
      for path, object in aws_s3_object.schema :
      object.bucket == "example-schemas" && object.content_type == "application/json" && object.etag == filemd5("tests/fixtures/schemas/${path}")
    ])
    error_message = "Schemas must be JSON objects in the schema bucket whose etag follows the file's content."
  }

  assert {
    condition = jsondecode(aws_s3_object.schema_index[0].content) == {
      format = 1
      prefix = "schemas/"
      schemas = [
        { id = "checkout/Group/1-0.json", name = "Group", etag = "\"${filemd5("tests/fixtures/schemas/checkout/Group/1-0.json")}\"" },
        { id = "checkout/Identify/1-0.json", name = "Identify", etag = "\"${filemd5("tests/fixtures/schemas/checkout/Identify/1-0.json")}\"" },
        { id = "checkout/Order_Completed/1-0.json", name = "Order Completed", etag = "\"${filemd5("tests/fixtures/schemas/checkout/Order_Completed/1-0.json")}\"" },
      ]
    }
    error_message = "The index of names must list every schema with its self.name and its object's ETag (the quoted MD5 S3 serves), under the key the Lambda reads."
  }

  assert {
    condition     = aws_s3_object.schema_index[0].key == "registry/schemas/index.json" && aws_s3_object.schema_index[0].bucket == "example-schemas"
    error_message = "The index must sit at registry/<schema_prefix>index.json in the schema bucket, where publish writes it."
  }

  assert {
    condition     = keys(terraform_data.schemas_check[0].triggers_replace.schemas) == keys(aws_s3_object.schema)
    error_message = "The schema check must re-run whenever any published schema changes."
  }

  assert {
    condition     = terraform_data.schemas_check[0].triggers_replace.command == ["python3", "-m", "reflekt_registry.tools.publish", "--check", "--bucket", "example-schemas", "--prefix", "schemas/"]
    error_message = "The gate must compare the project with the schemas already under the prefix in the bucket."
  }

  assert {
    condition     = alltrue([for object in aws_s3_object.schema : length(object.metadata) == 0])
    error_message = "Only a forced schema carries the forced-reason metadata."
  }
}

run "checks_offline_when_asked" {
  command = plan

  variables {
    schemas_dir          = "tests/fixtures/schemas"
    schemas_check_bucket = false
  }

  assert {
    condition     = !contains(terraform_data.schemas_check[0].triggers_replace.command, "--bucket")
    error_message = "schemas_check_bucket = false must keep the gate offline."
  }
}

run "records_why_a_schema_was_forced" {
  command = plan

  variables {
    schemas_dir   = "tests/fixtures/schemas"
    schemas_force = { "checkout/Group/1-0.json" = "INC-42: no app sends Group yet" }
  }

  assert {
    condition     = aws_s3_object.schema["checkout/Group/1-0.json"].metadata == tomap({ "reflekt-registry-forced" = "INC-42: no app sends Group yet" }) && length(aws_s3_object.schema["checkout/Identify/1-0.json"].metadata) == 0
    error_message = "A forced schema's object must record the reason, and only that object."
  }

  assert {
    condition     = join(" ", slice(terraform_data.schemas_check[0].triggers_replace.command, 8, 11)) == "--force-id checkout/Group/1-0.json INC-42: no app sends Group yet"
    error_message = "The gate must be told which schema is forced, and why."
  }
}

run "rejects_a_force_reason_s3_cannot_store" {
  command = plan

  variables {
    schemas_dir   = "tests/fixtures/schemas"
    schemas_force = { "checkout/Group/1-0.json" = "two\nlines" }
  }

  expect_failures = [var.schemas_force]
}

run "refuses_to_drop_a_published_schema" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas"
  }

  override_data {
    target = data.aws_s3_objects.published[0]
    values = {
      keys = ["schemas/checkout/Group/1-0.json", "schemas/checkout/Order_Completed/0-9.json"]
    }
  }

  expect_failures = [terraform_data.schemas_check]
}

run "drops_a_published_schema_only_when_pruned" {
  command = plan

  variables {
    schemas_dir   = "tests/fixtures/schemas"
    schemas_prune = ["checkout/Order_Completed/0-9.json"]
  }

  override_data {
    target = data.aws_s3_objects.published[0]
    values = {
      keys = ["schemas/checkout/Group/1-0.json", "schemas/checkout/Order_Completed/0-9.json", "schemas/notes.txt"]
    }
  }
}

run "rejects_an_id_that_is_not_the_path" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas-wrong-id"
  }

  expect_failures = [aws_s3_object.schema]
}

run "rejects_a_file_not_named_after_its_version" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas-wrong-version"
  }

  expect_failures = [aws_s3_object.schema]
}

run "rejects_an_unsupported_draft" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas-unsupported-draft"
  }

  expect_failures = [aws_s3_object.schema]
}

run "rejects_a_file_that_is_not_json" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas-not-json"
  }

  expect_failures = [aws_s3_object.schema]
}

run "rejects_a_folder_without_schemas" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/no-such-folder"
  }

  expect_failures = [var.schemas_dir]
}
