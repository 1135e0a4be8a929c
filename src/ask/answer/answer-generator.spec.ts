import { HttpException, Logger } from '@nestjs/common';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../../../test/support/fake-openai-server.js';
import { loadAppConfig } from '../../config/app-config.js';
import {
  ANSWER_SYSTEM_PROMPT,
  answerGeneratorProvider,
  extractCitations,
  formatAnswerPrompt,
  OpenAIChatAnswerGenerator,
} from './answer-generator.js';

describe('extractCitations', () => {
  const ids = ['law-1#0', 'law-1#1', 'law-2#0', 'odd]id'];

  it('returns the cited context ids in order of first appearance, each once', () => {
    expect(extractCitations('B holds [law-2#0]. A holds [law-1#0], B again [law-2#0].', ids)).toEqual([
      'law-2#0',
      'law-1#0',
    ]);
  });

  it('ignores brackets that are not context ids', () => {
    expect(extractCitations('See [1] and [law-9#0] and law-1#0 without brackets.', ids)).toEqual([]);
  });

  it('reads grouped citations and ids that contain a bracket', () => {
    expect(extractCitations('Both [law-1#1, law-1#0]; also [law-2#0; odd]id] and [odd]id].', ids)).toEqual([
      'law-1#1',
      'law-1#0',
      'law-2#0',
      'odd]id',
    ]);
  });
});

describe('formatAnswerPrompt', () => {
  it('numbers the passages and heads each with its id in brackets', () => {
    expect(
      formatAnswerPrompt(' Thuế suất là bao nhiêu? ', [
        { id: 'a', content: 'First.\n' },
        { id: 'b', content: 'Second.' },
      ]),
    ).toBe('Context:\n\nPassage 1 [a]:\nFirst.\n\nPassage 2 [b]:\nSecond.\n\nQuestion: Thuế suất là bao nhiêu?');
  });
});

describe('OpenAIChatAnswerGenerator', () => {
  let server: FakeOpenAIServer;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = await startFakeOpenAIServer();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
  });

  const generator = (apiKey?: string, contextMaxChars = 24_000) =>
    new OpenAIChatAnswerGenerator(
      { baseUrl: server.url, apiKey, model: 'fake-chat', timeoutMs: 5000, contextMaxChars },
      { sleep: () => Promise.resolve() },
    );

  it('sends at most LLM_CONTEXT_MAX_CHARS of passages, best first, the last one that fits shortened', async () => {
    const contexts = [
      { id: 'a', content: 'x'.repeat(600) },
      { id: 'b', content: 'y'.repeat(600) },
      { id: 'c', content: 'z'.repeat(600) },
    ];
    await generator(undefined, 1000).generate('q', contexts);
    const prompt = (server.requests[0].body?.messages ?? [])[1].content;
    expect(prompt).toBe(
      formatAnswerPrompt('q', [
        { id: 'a', content: 'x'.repeat(600) },
        { id: 'b', content: `${'y'.repeat(400)}…` },
      ]),
    );
    expect(prompt).not.toContain('[c]');
  });

  it('asks the chat API with the system prompt and numbered context, and returns the cited ids', async () => {
    const contexts = [
      { id: 'law-1#3', content: 'Thuế suất là 10%.' },
      { id: 'law-2#0', content: 'Unrelated.' },
    ];
    const result = await generator('sk-chat').generate('Thuế suất là bao nhiêu?', contexts);

    expect(result).toEqual({
      answer: 'According to the context, the answer is in passage [law-1#3].',
      citations: ['law-1#3'],
    });
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-chat');
    expect(req.body).toEqual({
      model: 'fake-chat',
      temperature: 0,
      messages: [
        { role: 'system', content: ANSWER_SYSTEM_PROMPT },
        { role: 'user', content: formatAnswerPrompt('Thuế suất là bao nhiêu?', contexts) },
      ],
    });
    expect(ANSWER_SYSTEM_PROMPT).toMatch(/only/);
    expect(ANSWER_SYSTEM_PROMPT).toMatch(/square brackets/);
    expect(ANSWER_SYSTEM_PROMPT).toMatch(/do not know/);
    expect(ANSWER_SYSTEM_PROMPT).toMatch(/language of the question/);
  });

  it('returns no citations when the answer cites nothing', async () => {
    const result = await generator().generate('Anything?', []);
    expect(result).toEqual({ answer: 'I do not know: the context does not say.', citations: [] });
  });

  it('turns a failing chat API into a 502 naming the LLM service, after retrying', async () => {
    server.failNext(500, 3);
    let error: unknown;
    try {
      await generator().generate('q', [{ id: 'a', content: 'c' }]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getStatus()).toBe(502);
    expect((error as HttpException).message).toMatch(
      /^LLM service at 127\.0\.0\.1:\d+ failed: 500 Internal Server Error/,
    );
    expect(server.requests).toHaveLength(3);
  });
});

describe('answerGeneratorProvider', () => {
  it('is null without LLM_BASE_URL and an OpenAI chat generator with it', () => {
    expect(answerGeneratorProvider.useFactory(loadAppConfig({}))).toBeNull();
    const generator = answerGeneratorProvider.useFactory(
      loadAppConfig({ LLM_BASE_URL: 'http://localhost:11434/v1', LLM_MODEL: 'llama3.1' }),
    );
    expect(generator).toBeInstanceOf(OpenAIChatAnswerGenerator);
    expect((generator as OpenAIChatAnswerGenerator).model).toBe('llama3.1');
  });
});
