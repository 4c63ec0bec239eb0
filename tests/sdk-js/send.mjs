// Sends calls through the real @segment/analytics-node, configured only by host and path.
// Usage: node send.mjs '{"host": ..., "path": ..., "writeKey": ..., "calls": [["track", {...}], ...]}'
import { Analytics } from '@segment/analytics-node'

const { host, path, writeKey, calls } = JSON.parse(process.argv[2])
// maxRetries 0: a refused batch must show up here as an error, not be retried out of sight.
const analytics = new Analytics({ writeKey, host, path, maxRetries: 0, flushAt: calls.length })
const failures = []
analytics.on('error', (error) => failures.push(String(error.code ?? error.reason ?? error)))
for (const [method, params] of calls) analytics[method](params)
await analytics.closeAndFlush({ timeout: 10000 })
console.log(JSON.stringify({ failures }))
