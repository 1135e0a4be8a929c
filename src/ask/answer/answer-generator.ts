import { BadGatewayException, type FactoryProvider } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { sliceWholeCharacters } from '../../common/text.js';
import { OpenAIHttpClient, type RetryPolicy } from '../../embeddings/providers/openai-http.js';

/** A retrieved chunk handed to the model: its id (cited as `[id]`) and its text. */
export interface AnswerContext {
  id: string;
  content: string;
}

export interface GeneratedAnswer {
  answer: string;
  /** Ids of the contexts the answer cites as `[id]`, in order of first citation. */
  citations: string[];
}

/** Writes an answer to a question from retrieved chunks only. Null when LLM_BASE_URL is unset. */
export interface AnswerGenerator {
  readonly model: string;
  generate(question: string, contexts: AnswerContext[]): Promise<GeneratedAnswer>;
}

export const ANSWER_GENERATOR = Symbol('ANSWER_GENERATOR');

export type LlmOptions = NonNullable<AppConfig['llm']>;

/** LLM_* has no retry setting; a couple of retries ride out a rate limit without making /ask hang. */
const LLM_MAX_RETRIES = 2;

export const ANSWER_SYSTEM_PROMPT = [
  'You answer questions using only the numbered context passages in the user message.',
  'Each passage is headed "Passage <n> [<id>]:". After every statement, cite the passages that support it',
  'by their id in square brackets, exactly as written in the heading, e.g. [doc-1#0]. Cite only ids from the context.',
  'If the context does not contain enough information to answer, say that you do not know;',
  'never use outside knowledge and never guess.',
  'Answer in the language of the question, even when the context is in another language.',
].join(' ');

/**
 * The passages one prompt holds, best first, within `maxChars` of passage text: whole passages
 * while they fit, then the first one that does not, shortened to what is left (never half of a
 * surrogate pair), then none. Without a bound, k = 100 chunks of up to 100,000 characters made a
 * prompt of millions: beyond any model's context (a 502 after the provider's 400), and paid for.
 */
export function fitContexts(contexts: AnswerContext[], maxChars: number): AnswerContext[] {
  const fitted: AnswerContext[] = [];
  let left = maxChars;
  for (const context of contexts) {
    const content = context.content.trim();
    if (content.length <= left) {
      fitted.push({ id: context.id, content });
      left -= content.length;
      continue;
    }
    const head = sliceWholeCharacters(content, left);
    if (head !== '') fitted.push({ id: context.id, content: `${head}…` });
    break;
  }
  return fitted;
}

/**
 * The user message: numbered passages, each headed `Passage <n> [<id>]:`, then the question. Test
 * doubles of the chat API parse this heading, so keep it stable.
 */
export function formatAnswerPrompt(question: string, contexts: AnswerContext[]): string {
  const passages = contexts.map((c, i) => `Passage ${i + 1} [${c.id}]:\n${c.content.trim()}`);
  return `Context:\n\n${passages.length ? passages.join('\n\n') : '(no passages)'}\n\nQuestion: ${question.trim()}`;
}

/**
 * The context ids that the answer cites as `[id]`, in order of first appearance; grouped citations
 * (`[a, b]`, `[a; b]`) count too, and anything that is not a context id is ignored.
 */
export function extractCitations(answer: string, contextIds: string[]): string[] {
  const known = new Set(contextIds);
  const firstAt = new Map<string, number>();
  const note = (id: string, position: number) => {
    if (known.has(id) && !(position >= (firstAt.get(id) ?? Infinity))) firstAt.set(id, position);
  };
  // Literal `[id]` first: it also finds ids that themselves contain brackets, commas or semicolons.
  for (const id of known) {
    const position = answer.indexOf(`[${id}]`);
    if (position >= 0) note(id, position);
  }
  for (const match of answer.matchAll(/\[([^[\]]+)\]/g)) {
    let offset = match.index + 1;
    for (const part of match[1].split(/([,;])/)) {
      if (part !== ',' && part !== ';') note(part.trim(), offset + (part.length - part.trimStart().length));
      offset += part.length;
    }
  }
  return [...firstAt.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
}

interface ChatCompletionResponse {
  choices?: Array<{ message?: { content?: unknown } }>;
}

/** Answers through an OpenAI-compatible `POST /chat/completions` (OpenAI, Azure, Ollama, vLLM...). */
export class OpenAIChatAnswerGenerator implements AnswerGenerator {
  readonly model: string;
  private readonly http: OpenAIHttpClient;
  private readonly contextMaxChars: number;

  constructor(options: LlmOptions, retry: Partial<RetryPolicy> = {}) {
    this.model = options.model;
    this.contextMaxChars = options.contextMaxChars;
    this.http = new OpenAIHttpClient({ ...options, maxRetries: LLM_MAX_RETRIES, serviceName: 'LLM service' }, retry);
  }

  async generate(question: string, retrieved: AnswerContext[]): Promise<GeneratedAnswer> {
    const contexts = fitContexts(retrieved, this.contextMaxChars);
    const response = (await this.http.postJson('/chat/completions', {
      model: this.model,
      // Deterministic as far as the server allows: the answer should follow the context, not vary.
      temperature: 0,
      messages: [
        { role: 'system', content: ANSWER_SYSTEM_PROMPT },
        { role: 'user', content: formatAnswerPrompt(question, contexts) },
      ],
    })) as ChatCompletionResponse | null;
    const content = response?.choices?.[0]?.message?.content;
    if (typeof content !== 'string') {
      throw new BadGatewayException(
        `LLM service at ${this.http.host} returned an unusable response: no choices[0].message.content`,
      );
    }
    const answer = content.trim();
    return {
      answer,
      citations: extractCitations(
        answer,
        contexts.map((c) => c.id),
      ),
    };
  }
}

/** Registered by the ask module; null without LLM_BASE_URL (then `answer: true` is a 400). */
export const answerGeneratorProvider: FactoryProvider<AnswerGenerator | null> = {
  provide: ANSWER_GENERATOR,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig): AnswerGenerator | null =>
    config.llm ? new OpenAIChatAnswerGenerator(config.llm) : null,
};
