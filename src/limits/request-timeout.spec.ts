import { requestTimeoutOptions } from './request-timeout.js';

describe('requestTimeoutOptions', () => {
  it('turns the limit off entirely at 0, as Fastify has it', () => {
    expect(requestTimeoutOptions(0)).toEqual({ requestTimeout: 0 });
  });

  it("keeps Node's own checking interval and header limit for a limit of minutes", () => {
    expect(requestTimeoutOptions(300_000)).toEqual({
      requestTimeout: 300_000,
      http: { requestTimeout: 300_000, headersTimeout: 60_000, connectionsCheckingInterval: 30_000 },
    });
  });

  it('checks ten times per limit and lets the headers take no longer than the whole request', () => {
    expect(requestTimeoutOptions(1000)).toEqual({
      requestTimeout: 1000,
      http: { requestTimeout: 1000, headersTimeout: 1000, connectionsCheckingInterval: 100 },
    });
  });
});
