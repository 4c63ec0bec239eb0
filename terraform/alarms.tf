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
