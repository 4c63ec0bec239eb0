################################################################################
# Schemas
################################################################################

locals {
  # Paths relative to schemas_dir double as the schemas' `$id`s and as the keys under schema_prefix.
  # `.reflekt/` holds Reflekt's own meta-schemas, which are not event schemas.
  schema_files = var.schemas_dir == null ? toset([]) : toset([
    for path in fileset(var.schemas_dir, "**/*.json") : path if !startswith(path, ".reflekt/")
  ])
  # null for a file that is not JSON, so a precondition can name it instead of jsondecode failing.
  schemas = { for path in local.schema_files : path => try(jsondecode(file("${var.schemas_dir}/${path}")), null) }
  # The index of names the registry looks events up in (the document publish writes; function/reflekt_registry/
  # plans.py reads it): files in Reflekt's <Event_Name>/<MAJOR>-<MINOR>.json layout, named by self.name, or by
  # their folder with underscores read as spaces.
  schema_index = {
    format = 1
    prefix = var.schema_prefix
    schemas = [
      for path in sort(tolist(local.schema_files)) : {
        id   = path
        name = try(tostring(local.schemas[path].self.name), replace(reverse(split("/", path))[1], "_", " "))
      } if can(regex("(^|/)[^/]+/[1-9][0-9]*-(0|[1-9][0-9]*)\\.json$", path))
    ]
  }
}

# Runs the registry's own schema check (every schema compiles, ids and drafts are right) before anything is uploaded;
# the preconditions below catch the commonest mistakes earlier, at plan time.
resource "terraform_data" "schemas_check" {
  count = var.schemas_dir == null ? 0 : 1

  triggers_replace = { for path in local.schema_files : path => filemd5("${var.schemas_dir}/${path}") }

  provisioner "local-exec" {
    # The interpreter list runs `python -m reflekt_registry.tools.publish --check <schemas_dir>` without a shell to quote for.
    interpreter = [var.schemas_check_python, "-m", "reflekt_registry.tools.publish", "--check"]
    command     = var.schemas_dir
    environment = {
      PYTHONPATH = abspath("${path.module}/../function")
    }
  }
}

resource "aws_s3_object" "schema" {
  for_each = local.schema_files

  bucket       = local.bucket_name
  key          = "${var.schema_prefix}${each.key}"
  source       = "${var.schemas_dir}/${each.key}"
  etag         = filemd5("${var.schemas_dir}/${each.key}")
  content_type = "application/json"

  tags = var.tags

  lifecycle {
    # The later checks pass for a file that is not JSON, so it is reported once, as such.
    precondition {
      condition     = local.schemas[each.key] != null
      error_message = "${var.schemas_dir}/${each.key} is not valid JSON."
    }
    precondition {
      condition     = local.schemas[each.key] == null || try(local.schemas[each.key]["$id"] == each.key, false)
      error_message = "${var.schemas_dir}/${each.key}: \"$id\" is ${jsonencode(try(local.schemas[each.key]["$id"], null))}; it must be the file's path relative to schemas_dir, \"${each.key}\"."
    }
    # Like the registry, read a schema that names no "$schema" as draft-07.
    precondition {
      condition     = local.schemas[each.key] == null || can(regex("^https?://json-schema\\.org/draft-0[467]/schema#?$", lookup(local.schemas[each.key], "$schema", "http://json-schema.org/draft-07/schema#")))
      error_message = "${var.schemas_dir}/${each.key}: \"$schema\" is ${jsonencode(try(local.schemas[each.key]["$schema"], null))}; the registry validates JSON Schema draft-04, draft-06 and draft-07 (e.g. \"http://json-schema.org/draft-07/schema#\")."
    }
  }

  depends_on = [terraform_data.schemas_check]
}

# One conditional GET a TTL tells a warm Lambda every schema's name, whatever their number (README: Tracking plans).
resource "aws_s3_object" "schema_index" {
  count = var.schemas_dir == null ? 0 : 1

  bucket       = local.bucket_name
  key          = "registry/index.json"
  content      = jsonencode(local.schema_index)
  content_type = "application/json"

  tags = var.tags

  depends_on = [aws_s3_object.schema]
}
