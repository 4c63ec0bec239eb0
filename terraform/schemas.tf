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

  # The schemas already in the bucket (ids under schema_prefix), known at plan time once the bucket exists.
  published_schemas = var.schemas_dir == null ? [] : [
    for key in data.aws_s3_objects.published[0].keys : trimprefix(key, var.schema_prefix) if endswith(key, ".json")
  ]
  # Published schemas the project no longer has: Terraform would delete the ones it wrote, while old apps still send them.
  dropped_schemas = setsubtract(local.published_schemas, setunion(local.schema_files, var.schemas_prune))

  # publish's gate, run as `python -m reflekt_registry.tools.publish --check <schemas_dir>` without a shell to quote for:
  # usable schemas, Reflekt's versioning, and every MINOR accepting what the earlier MINORs of its MAJOR accept, compared
  # with the bucket's current schemas too unless schemas_check_bucket is false. --force-id passes schemas_force on.
  schemas_check_command = concat(
    [var.schemas_check_python, "-m", "reflekt_registry.tools.publish", "--check"],
    var.schemas_check_bucket ? ["--bucket", local.bucket_name, "--prefix", var.schema_prefix] : [],
    flatten([for id, reason in var.schemas_force : ["--force-id", id, reason]]),
  )

  # The index of names the registry looks events up in (the document publish writes; function/reflekt_registry/
  # plans.py reads it): files in Reflekt's <Event_Name>/<MAJOR>-<MINOR>.json layout, named by self.name, or by
  # their folder with underscores read as spaces, each with the ETag S3 gives its object, so that a warm Lambda
  # knows every cached schema is current from this one object. That ETag is the file's MD5, quoted as S3 quotes
  # it, because the bucket encrypts with SSE-S3 (s3.tf) and each schema is written in a single PUT.
  schema_index = {
    format = 1
    prefix = var.schema_prefix
    schemas = [
      for path in sort(tolist(local.schema_files)) : {
        id   = path
        name = try(tostring(local.schemas[path].self.name), replace(reverse(split("/", path))[1], "_", " "))
        etag = "\"${filemd5("${var.schemas_dir}/${path}")}\""
      } if can(regex("(^|/)[^/]+/[1-9][0-9]*-(0|[1-9][0-9]*)\\.json$", path))
    ]
  }
}

data "aws_s3_objects" "published" {
  count = var.schemas_dir == null ? 0 : 1

  bucket = local.bucket_name
  prefix = var.schema_prefix
  # Listing is paged by 1,000 keys; this covers registries far larger than any tracking plan.
  max_keys = 100000
}

# Runs publish's gate before any schema is uploaded: every schema usable, versions in sequence, published versions
# unchanged except for annotations, every MINOR compatible with the earlier MINORs of its MAJOR (in the project and in
# the bucket). The preconditions below catch the commonest mistakes earlier, at plan time.
resource "terraform_data" "schemas_check" {
  count = var.schemas_dir == null ? 0 : 1

  triggers_replace = {
    schemas = { for path in local.schema_files : path => filemd5("${var.schemas_dir}/${path}") }
    command = local.schemas_check_command
  }

  provisioner "local-exec" {
    interpreter = local.schemas_check_command
    command     = var.schemas_dir
    environment = {
      PYTHONPATH             = abspath("${path.module}/../function")
      REGISTRY_BUCKET_REGION = local.bucket_region
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.dropped_schemas) == 0
      error_message = "These schemas are in s3://${local.bucket_name}/${var.schema_prefix} but no longer in ${coalesce(var.schemas_dir, "-")}: ${join(", ", sort(local.dropped_schemas))}. Apps may still send them, so they are not deleted by accident: put the files back, or list the ids in schemas_prune to delete them."
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
  # Why a schema the gate refused was published anyway (publish --force), kept on the object.
  metadata = contains(keys(var.schemas_force), each.key) ? { "reflekt-registry-forced" = var.schemas_force[each.key] } : {}

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
    # Reflekt names the file after the version; publish's gate checks the rest of the sequencing at apply.
    precondition {
      condition     = local.schemas[each.key] == null || try("${local.schemas[each.key].self.version}.json" == basename(each.key), true)
      error_message = "${var.schemas_dir}/${each.key}: self.version is ${jsonencode(try(local.schemas[each.key].self.version, null))}; the file must be named after it (Reflekt's MAJOR-MINOR.json)."
    }
    # Like the registry, read a schema that names no "$schema" as draft-07.
    precondition {
      condition     = local.schemas[each.key] == null || can(regex("^https?://json-schema\\.org/draft-0[467]/schema#?$", lookup(local.schemas[each.key], "$schema", "http://json-schema.org/draft-07/schema#")))
      error_message = "${var.schemas_dir}/${each.key}: \"$schema\" is ${jsonencode(try(local.schemas[each.key]["$schema"], null))}; the registry validates JSON Schema draft-04, draft-06 and draft-07 (e.g. \"http://json-schema.org/draft-07/schema#\")."
    }
  }

  # Every object needs a version id (the rollback history) and must be encrypted and behind the TLS-only policy
  # from its first write, so none is written before the bucket is set up (the policy waits for the public access block).
  depends_on = [
    terraform_data.schemas_check,
    aws_s3_bucket_versioning.this,
    aws_s3_bucket_server_side_encryption_configuration.this,
    aws_s3_bucket_policy.this,
  ]
}

# One conditional GET a TTL tells a warm Lambda every schema's name, whatever their number (README: Tracking plans).
resource "aws_s3_object" "schema_index" {
  count = var.schemas_dir == null ? 0 : 1

  bucket       = local.bucket_name
  key          = local.schema_index_key
  content      = jsonencode(local.schema_index)
  content_type = "application/json"

  tags = var.tags

  depends_on = [aws_s3_object.schema]
}
