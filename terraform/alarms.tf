################################################################################
# Alarms on the registry's EMF metrics (namespace ReflektRegistry)
################################################################################

resource "aws_cloudwatch_metric_alarm" "invalid_events" {
  count = var.create_alarms ? 1 : 0

  alarm_name        = "${var.name}-invalid-events"
  alarm_description = "More than ${var.invalid_events_alarm_percent}% of the events ${var.name} forwarded were invalid"
  # Sustained, not a single bad deploy of one screen: 2 of 3 five-minute periods.
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.invalid_events_alarm_percent
  # No events, no data points: quiet hours are not an incident.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions

  metric_query {
    id          = "invalid_percent"
    expression  = "100 * invalid / (valid + invalid)"
    label       = "Invalid events (%)"
    return_data = true
  }

  metric_query {
    id = "valid"
    metric {
      namespace   = "ReflektRegistry"
      metric_name = "ValidEvents"
      dimensions  = { FunctionName = aws_lambda_function.this.function_name }
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "invalid"
    metric {
      namespace   = "ReflektRegistry"
      metric_name = "InvalidEvents"
      dimensions  = { FunctionName = aws_lambda_function.this.function_name }
      period      = 300
      stat        = "Sum"
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "forward_latency" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-forward-latency"
  alarm_description   = "Forwarding to Segment from ${var.name} is slow: p99 over ${var.forward_latency_alarm_ms} ms"
  namespace           = "ReflektRegistry"
  metric_name         = "ForwardLatency"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.forward_latency_alarm_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "spool_age" {
  count = var.create_alarms ? 1 : 0

  alarm_name        = "${var.name}-spool-age"
  alarm_description = "Events ${var.name} spooled have waited over ${var.spool_age_alarm_seconds} s for Segment, or the replay has stopped running"
  namespace         = "ReflektRegistry"
  metric_name       = "SpoolAge"
  dimensions        = { FunctionName = aws_lambda_function.this.function_name }
  statistic         = "Maximum"
  # Every drain, once a minute, reports the age (0 when the spool is empty).
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.spool_age_alarm_seconds
  # Silence means no drain ran or it could not read the spool: the events in it are not being replayed.
  treat_missing_data = "breaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "spool_rejected" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-spool-rejected"
  alarm_description   = "Segment refused spooled events from ${var.name}; they are set aside under ${var.spool_prefix}rejected/ and will not be retried"
  namespace           = "ReflektRegistry"
  metric_name         = "RejectedEvents"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}
