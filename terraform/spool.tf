################################################################################
# Spool: events Segment did not take wait under spool_prefix; a schedule replays them
################################################################################

# Every minute the function drains the spool: oldest first, deleting each object after Segment's 200.
resource "aws_cloudwatch_event_rule" "replay" {
  name                = "${var.name}-replay"
  description         = "Invokes ${var.name} every minute to replay the events it spooled while Segment did not take them"
  schedule_expression = "rate(1 minute)"

  tags = var.tags

  lifecycle {
    # The schema index and the configuration document decide how events are judged and where they go: write access
    # to the spool must not reach them.
    precondition {
      condition     = !startswith(local.schema_index_key, var.spool_prefix) && !startswith(var.config_key, var.spool_prefix)
      error_message = "spool_prefix (\"${var.spool_prefix}\") covers ${local.schema_index_key} (the schema index) or config_key (\"${var.config_key}\", the configuration document): choose a prefix such as \"spool/\"."
    }
  }
}

resource "aws_cloudwatch_event_target" "replay" {
  rule = aws_cloudwatch_event_rule.replay.name
  arn  = aws_lambda_function.this.arn

  # A missed drain is not retried: the next one is a minute away, and a late one would only queue behind it.
  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "replay" {
  statement_id  = "AllowReplaySchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.replay.arn
}

# The schedule is the function's only asynchronous caller; Lambda would otherwise run a failed drain twice more.
resource "aws_lambda_function_event_invoke_config" "replay" {
  function_name          = aws_lambda_function.this.function_name
  maximum_retry_attempts = 0
}

# Deleting a spooled object in a versioned bucket keeps it as a noncurrent version: those go after a day, with the
# delete markers left behind, and batches Segment refused (set aside under rejected/) after spool_rejected_days.
# Only for a bucket this module creates: a lifecycle configuration replaces the bucket's whole set of rules.
resource "aws_s3_bucket_lifecycle_configuration" "spool" {
  #checkov:skip=CKV_AWS_300:The first rule aborts incomplete uploads under the whole spool prefix, rejected/ included; the registry never uploads in parts
  count = var.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    id     = "spool-noncurrent-versions"
    status = "Enabled"

    filter {
      prefix = var.spool_prefix
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "spool-rejected"
    status = "Enabled"

    filter {
      prefix = "${var.spool_prefix}rejected/"
    }

    expiration {
      days = var.spool_rejected_days
    }
  }

  # Versioning must be on before rules on noncurrent versions mean anything.
  depends_on = [aws_s3_bucket_versioning.this]
}
