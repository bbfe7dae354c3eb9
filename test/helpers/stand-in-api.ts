/**
 * A stand-in for the agents' model APIs, for the suite's own test container (`node -e` of this file's
 * build; it imports nothing but node's http). It speaks just enough of each vendor's wire protocol,
 * streamed as the agents ask for it, for one turn of an agent's loop:
 *
 *   POST …/v1/messages                          Anthropic Messages (Claude Code)
 *   POST …/responses                            OpenAI Responses (Codex CLI)
 *   POST …/chat/completions                     OpenAI Chat Completions (OpenCode's custom provider)
 *   POST …/models/M:streamGenerateContent etc.  Gemini API (Gemini CLI)
 *
 * A request that offers the agent's shell tool and carries no tool result yet is answered with one
 * call of that tool running COMMAND (or STANDIN_COMMAND); the request that carries its result is answered with FINAL plus
 * whether the result showed the command's output. Anything else (titles, token counts, checks) gets a
 * short text. Every request is recorded; GET /_standin/requests returns them. With STANDIN_CERT and
 * STANDIN_KEY it speaks HTTPS.
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

/** What the tool call runs: writes the proof file and prints who ran it (no $(…): Gemini CLI refuses it). */
export const COMMAND = 'echo sbx-at-work > proof.txt && echo TOOL-RAN && id -u';
export const PROOF_FILE = 'proof.txt';
/** What the tool call runs in the stand-in's container: STANDIN_COMMAND when set, else COMMAND. */
const TOOL_COMMAND = process.env.STANDIN_COMMAND || COMMAND;
/** The final answer's first words; followed by "tool output seen" or "tool output missing". */
export const FINAL = 'STANDIN-FINAL-ANSWER';
const RAN = 'TOOL-RAN';

// biome-ignore lint/suspicious/noExplicitAny: bodies are whatever JSON the agents send
type Json = any;

export interface Recorded {
  method: string;
  url: string;
  /** The address the request came from (the egress proxy's, when it came through it). */
  from: string;
  headers: Record<string, string | string[] | undefined>;
  body: Json;
  /** What the stand-in answered: a tool call, the final answer or a filler text. */
  answer: 'tool' | 'final' | 'text';
  /** The tool result this request carried, as text (when it carried one). */
  toolResult?: string;
}

const final = (result: string) =>
  `${FINAL}: ${result.includes(RAN) ? 'tool output seen' : 'tool output missing'}.`;
const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value ?? ''));

function sse(res: ServerResponse, events: Array<[string | undefined, Json]>, done = false): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [event, data] of events)
    res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  if (done) res.write('data: [DONE]\n\n');
  res.end();
}

function json(res: ServerResponse, status: number, body: Json): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Anthropic Messages API: tool Bash; results come back as tool_result blocks. */
function anthropic(body: Json, res: ServerResponse, rec: Recorded): void {
  const last = body.messages?.at(-1);
  const blocks: Json[] = Array.isArray(last?.content) ? last.content : [];
  const result = blocks.find((b) => b.type === 'tool_result');
  const offersBash = (body.tools ?? []).some((t: Json) => t.name === 'Bash');
  const usage = { input_tokens: 10, output_tokens: 5 };
  let content: Json;
  if (result) {
    rec.answer = 'final';
    rec.toolResult = text(
      Array.isArray(result.content) ? result.content.map((c: Json) => c.text).join('') : result.content,
    );
    if (result.is_error) rec.toolResult = `[error] ${rec.toolResult}`;
    content = { type: 'text', text: final(rec.toolResult) };
  } else if (offersBash) {
    rec.answer = 'tool';
    content = {
      type: 'tool_use',
      id: 'toolu_standin_1',
      name: 'Bash',
      input: { command: TOOL_COMMAND, description: 'Write the proof file' },
    };
  } else content = { type: 'text', text: 'stand-in' };
  const stop = content.type === 'tool_use' ? 'tool_use' : 'end_turn';
  const message = { id: 'msg_standin', type: 'message', role: 'assistant', model: body.model };
  if (!body.stream) {
    json(res, 200, { ...message, content: [content], stop_reason: stop, stop_sequence: null, usage });
    return;
  }
  const start = content.type === 'tool_use' ? { ...content, input: {} } : { type: 'text', text: '' };
  const delta =
    content.type === 'tool_use'
      ? { type: 'input_json_delta', partial_json: JSON.stringify(content.input) }
      : { type: 'text_delta', text: content.text };
  sse(res, [
    [
      'message_start',
      {
        type: 'message_start',
        message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage },
      },
    ],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: start }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    [
      'message_delta',
      {
        type: 'message_delta',
        delta: { stop_reason: stop, stop_sequence: null },
        usage: { output_tokens: 5 },
      },
    ],
    ['message_stop', { type: 'message_stop' }],
  ]);
}

/** The shell tool an OpenAI-style request offers, and its arguments for TOOL_COMMAND. */
function shellCall(tools: Json[]): { name: string; args: Json } | undefined {
  const names = tools.map((t: Json) => t.name ?? t.function?.name);
  if (names.includes('exec_command')) return { name: 'exec_command', args: { cmd: TOOL_COMMAND } };
  if (names.includes('shell_command')) return { name: 'shell_command', args: { command: TOOL_COMMAND } };
  if (names.includes('shell')) return { name: 'shell', args: { command: ['bash', '-lc', TOOL_COMMAND] } };
  if (names.includes('bash'))
    return { name: 'bash', args: { command: TOOL_COMMAND, description: 'Write the proof file' } };
  return undefined;
}

/** OpenAI Responses API (Codex): function_call items; results come back as function_call_output. */
function responses(body: Json, res: ServerResponse, rec: Recorded): void {
  const input: Json[] = Array.isArray(body.input) ? body.input : [];
  const result = input.findLast((i) => i.type === 'function_call_output');
  const call = shellCall(body.tools ?? []);
  let item: Json;
  if (result) {
    rec.answer = 'final';
    rec.toolResult = text(result.output);
    item = {
      type: 'message',
      id: 'msg_standin',
      role: 'assistant',
      content: [{ type: 'output_text', text: final(rec.toolResult), annotations: [] }],
    };
  } else if (call) {
    rec.answer = 'tool';
    item = {
      type: 'function_call',
      id: 'fc_standin',
      call_id: 'call_standin_1',
      name: call.name,
      arguments: JSON.stringify(call.args),
    };
  } else
    item = {
      type: 'message',
      id: 'msg_standin',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'stand-in', annotations: [] }],
    };
  const response = { id: 'resp_standin', object: 'response', model: body.model, status: 'completed' };
  const usage = {
    input_tokens: 10,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 5,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 15,
  };
  sse(res, [
    ['response.created', { type: 'response.created', response: { ...response, status: 'in_progress' } }],
    ['response.output_item.added', { type: 'response.output_item.added', output_index: 0, item }],
    ['response.output_item.done', { type: 'response.output_item.done', output_index: 0, item }],
    ['response.completed', { type: 'response.completed', response: { ...response, output: [item], usage } }],
  ]);
}

/** OpenAI Chat Completions (OpenCode's openai-compatible provider): tool_calls; results as role tool. */
function chat(body: Json, res: ServerResponse, rec: Recorded): void {
  const last = body.messages?.at(-1);
  const call = shellCall(body.tools ?? []);
  const chunk = (delta: Json, finish: string | null) => [
    undefined,
    {
      id: 'chatcmpl-standin',
      object: 'chat.completion.chunk',
      created: 0,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    },
  ];
  let events: Json[];
  if (last?.role === 'tool') {
    rec.answer = 'final';
    rec.toolResult = text(
      Array.isArray(last.content) ? last.content.map((c: Json) => c.text).join('') : last.content,
    );
    events = [chunk({ role: 'assistant', content: final(rec.toolResult) }, null), chunk({}, 'stop')];
  } else if (call) {
    rec.answer = 'tool';
    const tool = {
      index: 0,
      id: 'call_standin_1',
      type: 'function',
      function: { name: call.name, arguments: JSON.stringify(call.args) },
    };
    events = [chunk({ role: 'assistant', tool_calls: [tool] }, null), chunk({}, 'tool_calls')];
  } else events = [chunk({ role: 'assistant', content: 'stand-in' }, null), chunk({}, 'stop')];
  if (body.stream) {
    sse(res, events, true);
    return;
  }
  const message = events[0][1].choices[0].delta;
  json(res, 200, {
    id: 'chatcmpl-standin',
    object: 'chat.completion',
    created: 0,
    model: body.model,
    choices: [{ index: 0, message, finish_reason: events[1][1].choices[0].finish_reason }],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  });
}

/** Gemini API: functionCall parts; results come back as functionResponse parts. */
function gemini(body: Json, url: string, res: ServerResponse, rec: Recorded): void {
  if (url.includes(':countTokens')) {
    json(res, 200, { totalTokens: 10 });
    return;
  }
  const last = body.contents?.at(-1);
  const parts: Json[] = last?.parts ?? [];
  const result = parts.find((p) => p.functionResponse);
  const declared = (body.tools ?? []).flatMap((t: Json) => t.functionDeclarations ?? []);
  const offersShell = declared.some((d: Json) => d.name === 'run_shell_command');
  let part: Json;
  if (result) {
    rec.answer = 'final';
    const response = result.functionResponse.response;
    rec.toolResult = text(typeof response?.output === 'string' ? response.output : response);
    part = { text: final(rec.toolResult) };
  } else if (offersShell) {
    rec.answer = 'tool';
    part = {
      functionCall: {
        name: 'run_shell_command',
        args: { command: TOOL_COMMAND, description: 'Write the proof file' },
      },
    };
  } else if (body.generationConfig?.responseMimeType === 'application/json') {
    // Gemini CLI's own checks (who speaks next, which model routes): the answer that ends the turn.
    part = {
      text: JSON.stringify({
        reasoning: 'stand-in',
        next_speaker: 'user',
        model_choice: 'flash',
        complexity_reasoning: 'stand-in',
        complexity_score: 1,
      }),
    };
  } else part = { text: 'stand-in' };
  const answer = {
    candidates: [{ content: { role: 'model', parts: [part] }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
    modelVersion: 'stand-in',
  };
  if (url.includes(':streamGenerateContent')) sse(res, [[undefined, answer]]);
  else json(res, 200, answer);
}

/** Listens on port: plain HTTP, or HTTPS with tls (a certificate and its key, PEM). */
export function standIn(port: number, tls?: { cert: string; key: string }): void {
  const requests: Recorded[] = [];
  const serve = (handler: RequestListener) => (tls ? createHttpsServer(tls, handler) : createServer(handler));
  serve((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/_standin/requests') return json(res, 200, requests);
    let raw = '';
    req.on('data', (d) => {
      raw += d;
    });
    req.on('end', () => {
      let body: Json = {};
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {}
      const rec: Recorded = {
        method: req.method ?? '',
        url,
        from: req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '',
        headers: req.headers,
        body,
        answer: 'text',
      };
      requests.push(rec);
      process.stdout.write(`${req.method} ${url}\n`);
      const path = url.split('?')[0]!;
      if (req.method !== 'POST') return json(res, 404, { error: { message: `stand-in: no ${url}` } });
      if (path.endsWith('/messages/count_tokens')) return json(res, 200, { input_tokens: 10 });
      if (path.endsWith('/messages')) return anthropic(body, res, rec);
      if (path.endsWith('/responses')) return responses(body, res, rec);
      if (path.endsWith('/chat/completions')) return chat(body, res, rec);
      if (path.includes('/models/')) return gemini(body, url, res, rec);
      json(res, 404, { error: { message: `stand-in: no ${url}` } });
    });
  }).listen(port, '0.0.0.0', () => process.stdout.write(`stand-in listening on ${port}\n`));
}

if (process.env.STANDIN_PORT)
  standIn(
    Number(process.env.STANDIN_PORT),
    process.env.STANDIN_CERT && process.env.STANDIN_KEY
      ? { cert: process.env.STANDIN_CERT, key: process.env.STANDIN_KEY }
      : undefined,
  );
