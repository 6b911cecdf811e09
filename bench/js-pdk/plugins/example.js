'use strict';

// The JS PDK twin of `gitlab-ci-auth --plugin example` (src/GitLabCiAuth.Host/ExamplePlugin.cs):
// access reads two request headers and sets one upstream header (3 PDK calls); a request whose first
// header says "deny" is answered 403 instead. Kong's JS PDK moves one call per RPC, so the calls are
// sequential (one round trip each).
class ExamplePlugin {
  constructor(config) {
    this.config = config || {}
  }

  async access(kong) {
    const requestHeader = this.config.request_header || 'x-request-id'
    const upstreamHeader = this.config.upstream_header || 'x-example'
    const greeting = this.config.greeting || 'hello'
    const id = await kong.request.getHeader(requestHeader)
    if (id === 'deny') {
      return kong.response.exit(403, '{"message":"denied by example"}', { 'Content-Type': 'application/json' })
    }
    const host = await kong.request.getHeader('host')
    await kong.service.request.setHeader(upstreamHeader, `${greeting} ${id}@${host}`)
  }
}

module.exports = {
  Plugin: ExamplePlugin,
  Name: 'example',
  Schema: [
    { request_header: { type: 'string', default: 'x-request-id' } },
    { upstream_header: { type: 'string', default: 'x-example' } },
    { greeting: { type: 'string', default: 'hello' } },
  ],
  Version: '0.1.0',
  Priority: 1000,
}
