################################################################################
# Configuration document
################################################################################

locals {
  # Without sources, plans or controls there is no document: the Lambda runs on its environment variables alone,
  # exactly as before the document existed.
  # How many sources there are is no secret, though their keys are: count and conditions may use it.
  source_count   = nonsensitive(length(var.sources))
  config_enabled = local.source_count > 0 || length(var.plans) > 0 || length(local.rendered_controls[""]) > 0

  # Controls as the document spells them: unset keys left out, so a source's controls merge over the module's key
  # by key. The module's own controls are under "", which no source name can be.
  rendered_controls = {
    for owner, controls in merge({ "" = var.controls }, { for name, source in var.sources : name => source.controls }) :
    # try() reads an attribute of unset (null) controls as null, where a conditional could not give one type.
    owner => {
      for key, value in {
        unplanned_events     = try(controls.unplanned_events, null)
        unplanned_properties = try(controls.unplanned_properties, null)
        violations           = try(controls.violations, null)
        common_schema        = try({ for k, v in controls.common_schema : k => v if v != null }, null)
      } : key => value if value != null
    }
  }

  rendered_sources = {
    for name, source in var.sources : name => {
      for key, value in {
        write_keys        = source.write_keys
        plans             = source.plans
        controls          = length(local.rendered_controls[name]) > 0 ? local.rendered_controls[name] : null
        valid_write_key   = source.valid_write_key
        invalid_write_key = source.invalid_write_key
      } : key => value if value != null
    }
  }

  config_document = {
    for key, value in {
      version           = 1
      plans             = length(var.plans) > 0 ? var.plans : null
      controls          = length(local.rendered_controls[""]) > 0 ? local.rendered_controls[""] : null
      sources           = local.source_count > 0 ? local.rendered_sources : null
      invalid_write_key = var.invalid_write_key
      default_source    = var.default_source
    } : key => value if value != null
  }

  inbound_keys = flatten([for source in values(var.sources) : source.write_keys])
}

resource "aws_s3_object" "config" {
  count = local.config_enabled ? 1 : 0

  bucket       = local.bucket_name
  key          = var.config_key
  content      = jsonencode(local.config_document)
  content_type = "application/json"

  tags = var.tags

  lifecycle {
    # The registry refuses these too, but only once the Lambda reads the document; plan time is the kinder moment.
    precondition {
      condition     = local.source_count == 0 || (nonsensitive(length(var.registry_write_keys)) == 0 && nonsensitive(var.valid_segment_write_key == null && var.invalid_segment_write_key == null))
      error_message = "sources is set, so registry_write_keys, valid_segment_write_key and invalid_segment_write_key must be left unset: move those keys into a source."
    }
    precondition {
      condition     = nonsensitive(length(local.inbound_keys) == length(distinct(local.inbound_keys)))
      error_message = "A write key is listed under two sources; each inbound key must route to exactly one source."
    }
    precondition {
      condition     = nonsensitive(var.invalid_write_key != null || alltrue([for source in values(var.sources) : source.invalid_write_key != null]))
      error_message = "Every source needs an invalid_write_key, its own or the module's invalid_write_key."
    }
    precondition {
      condition     = var.default_source == null || contains(nonsensitive(keys(var.sources)), coalesce(var.default_source, "-"))
      error_message = "default_source must name one of the sources."
    }
    precondition {
      condition     = local.source_count > 0 || (var.invalid_write_key == null && var.default_source == null)
      error_message = "invalid_write_key and default_source only apply to sources, and none is set."
    }
  }

  # Written into the bucket as it will stay: versioned (so a bad document can be rolled back), encrypted, and
  # behind its TLS-only policy (which waits for the public access block).
  depends_on = [
    aws_s3_bucket_versioning.this,
    aws_s3_bucket_server_side_encryption_configuration.this,
    aws_s3_bucket_policy.this,
  ]
}
