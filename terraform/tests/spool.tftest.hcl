# The spool: what the Lambda may do under spool_prefix (and nowhere else), the schedule that drains it, the lifecycle
# rules that keep deleted and refused batches from lingering, and the alarms on its age and on refused batches.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name               = "example-schemas"
  registry_write_keys       = ["wk-web"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
}

run "lambda_uses_the_spool_only_under_its_prefix" {
  command = plan

  variables {
    spool_prefix = "registry/spool/"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["SPOOL_PREFIX"] == "registry/spool/"
    error_message = "The function must be told the spool prefix the role is limited to."
  }

  assert {
    condition = (
      [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "UseSpool"][0].resources == toset(["arn:aws:s3:::example-schemas/registry/spool/*"])
      && [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "UseSpool"][0].actions == toset(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])
    )
    error_message = "Put, get and delete must be granted on the objects under the spool prefix alone."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.lambda.statement :
      alltrue([for r in s.resources : startswith(r, "arn:aws:s3:::example-schemas/registry/spool/")])
      if length(setintersection(s.actions, ["s3:PutObject", "s3:DeleteObject"])) > 0
    ])
    error_message = "No statement may let the function write or delete outside the spool prefix."
  }

  assert {
    condition = jsonencode([for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ListOwnPrefixes"][0].condition) == jsonencode([
      { test = "StringLike", values = ["schemas/*", "registry/schemas/index.json", "registry/spool/*"], variable = "s3:prefix" },
    ])
    error_message = "s3:ListBucket must reach the spool by its prefix, and nothing beyond it and the schemas."
  }
}

run "a_schedule_drains_the_spool_every_minute" {
  command = plan

  assert {
    condition     = aws_cloudwatch_event_rule.replay.schedule_expression == "rate(1 minute)" && aws_cloudwatch_event_rule.replay.name == "reflekt-registry-replay"
    error_message = "An EventBridge rule must invoke the replay every minute."
  }

  assert {
    condition     = aws_cloudwatch_event_target.replay.rule == "reflekt-registry-replay" && aws_cloudwatch_event_target.replay.retry_policy[0].maximum_retry_attempts == 0
    error_message = "The rule must target the function, without retries (the next drain is a minute away)."
  }

  assert {
    condition = (
      aws_lambda_permission.replay.principal == "events.amazonaws.com"
      && aws_lambda_permission.replay.action == "lambda:InvokeFunction"
      && aws_lambda_permission.replay.function_name == "reflekt-registry"
    )
    error_message = "EventBridge must be allowed to invoke the function, for this rule."
  }

  assert {
    condition     = aws_lambda_function_event_invoke_config.replay.maximum_retry_attempts == 0
    error_message = "Lambda must not run a failed drain again."
  }
}

run "spool_prefix_must_stay_apart_from_the_schemas" {
  command = plan

  variables {
    spool_prefix = "schemas/spool/"
  }

  expect_failures = [var.schema_prefix]
}

run "schema_prefix_must_stay_apart_from_the_spool" {
  command = plan

  variables {
    schema_prefix = "spool/"
  }

  expect_failures = [var.schema_prefix]
}

run "spool_prefix_must_not_cover_the_schema_index" {
  command = plan

  variables {
    spool_prefix = "registry/"
  }

  expect_failures = [aws_cloudwatch_event_rule.replay]
}

run "spool_prefix_must_not_cover_the_configuration_document" {
  command = plan

  variables {
    spool_prefix = "settings/"
    config_key   = "settings/config.json"
  }

  expect_failures = [aws_cloudwatch_event_rule.replay]
}

run "spool_prefix_is_validated" {
  command = plan

  variables {
    spool_prefix        = "/spool"
    spool_rejected_days = 0
  }

  expect_failures = [var.spool_prefix, var.spool_rejected_days]
}

run "lifecycle_expires_what_deleting_and_rejecting_leave" {
  command = plan

  variables {
    spool_rejected_days = 7
  }

  assert {
    condition = (
      [for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : r if r.id == "spool-noncurrent-versions"][0].filter[0].prefix == "spool/"
      && [for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : r if r.id == "spool-noncurrent-versions"][0].noncurrent_version_expiration[0].noncurrent_days == 1
      && [for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : r if r.id == "spool-noncurrent-versions"][0].expiration[0].expired_object_delete_marker
    )
    error_message = "Noncurrent versions under the spool prefix, and their delete markers, must expire after a day."
  }

  assert {
    condition = (
      [for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : r if r.id == "spool-rejected"][0].filter[0].prefix == "spool/rejected/"
      && [for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : r if r.id == "spool-rejected"][0].expiration[0].days == 7
    )
    error_message = "Rejected batches must expire after spool_rejected_days."
  }

  assert {
    condition     = alltrue([for r in aws_s3_bucket_lifecycle_configuration.spool[0].rule : startswith(r.filter[0].prefix, "spool/")])
    error_message = "No lifecycle rule may touch objects outside the spool prefix (schema versions are the rollback history)."
  }
}

run "an_existing_bucket_keeps_its_lifecycle_rules" {
  command = plan

  variables {
    create_bucket = false
    bucket_name   = "team-schemas"
  }

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.spool) == 0
    error_message = "A lifecycle configuration replaces all of a bucket's rules: never on a bucket this module did not create."
  }
}

run "alarms_on_the_spool_age_and_refused_batches" {
  command = plan

  variables {
    spool_age_alarm_seconds = 600
    alarm_actions           = ["arn:aws:sns:us-east-1:123456789012:oncall"]
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.spool_age[0].metric_name == "SpoolAge"
      && aws_cloudwatch_metric_alarm.spool_age[0].statistic == "Maximum"
      && aws_cloudwatch_metric_alarm.spool_age[0].threshold == 600
      && aws_cloudwatch_metric_alarm.spool_age[0].treat_missing_data == "breaching"
      && aws_cloudwatch_metric_alarm.spool_age[0].dimensions == tomap({ FunctionName = "reflekt-registry" })
    )
    error_message = "The spool age alarm must fire on the oldest object's age over the threshold, and when the drain goes silent."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.spool_rejected[0].metric_name == "RejectedEvents" && aws_cloudwatch_metric_alarm.spool_rejected[0].threshold == 0
    error_message = "Any batch Segment refused must raise the rejected alarm."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.spool_age[0].alarm_actions == toset(["arn:aws:sns:us-east-1:123456789012:oncall"])
    error_message = "The spool alarms must notify alarm_actions."
  }
}

run "spool_age_alarm_threshold_is_validated" {
  command = plan

  variables {
    spool_age_alarm_seconds = 30
  }

  expect_failures = [var.spool_age_alarm_seconds]
}
