# Publishing a Reflekt project's schemas/ folder (schemas_dir), planned against a mocked AWS provider.
# The local-exec schema check only runs on apply, so these runs exercise the plan-time preconditions.

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
        { id = "checkout/Group/1-0.json", name = "Group" },
        { id = "checkout/Identify/1-0.json", name = "Identify" },
        { id = "checkout/Order_Completed/1-0.json", name = "Order Completed" },
      ]
    }
    error_message = "The index of names must list every schema with its self.name, under the key the Lambda reads."
  }

  assert {
    condition     = aws_s3_object.schema_index[0].key == "registry/index.json" && aws_s3_object.schema_index[0].bucket == "example-schemas"
    error_message = "The index must sit at registry/index.json in the schema bucket."
  }

  assert {
    condition     = keys(terraform_data.schemas_check[0].triggers_replace) == keys(aws_s3_object.schema)
    error_message = "The schema check must re-run whenever any published schema changes."
  }
}

run "rejects_an_id_that_is_not_the_path" {
  command = plan

  variables {
    schemas_dir = "tests/fixtures/schemas-wrong-id"
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
