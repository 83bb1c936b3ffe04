// The real coding agents, headless, through the whole path: agent → a recording relay (keeps what
// the agent sent) → e2ee-proxy → e2ee-gateway (confidential) → the scripted engine. Claude Code
// (`claude -p`, Anthropic Messages) and Codex (`codex exec`, Responses) each complete a turn in
// which the engine asks for a tool call, the agent executes it against a scratch directory, sends
// the result back, and the engine's final answer carries a marker. Asserted: what the agents print,
// what reached the engine (exactly the expected turns, the tool result with the file's contents),
// and that the agents' identifying headers never reached the engine.
//
// Both agents run offline: no login, no telemetry, no update checks (see the environment below);
// each run is killed after AGENT_TIMEOUT_MS.

import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startStack, startRecordingRelay, agentBinary } from './lib/translation_stack.mjs';
import { deltaFrames, toolCallDeltas } from './lib/chat_chunks.mjs';

const MODEL = 'acme/coder-e2ee';
const AGENT_TIMEOUT_MS = 120000;
const CLAUDE = agentBinary('claude');
const CODEX = agentBinary('codex');

let stack;
let engine;
let relay;
const scratch = mkdtempSync(join(tmpdir(), 'e2ee-agents-'));

before(async () => {
  stack = await startStack({ model: MODEL });
  engine = stack.engine;
  relay = await startRecordingRelay(stack.proxy.url);
});
afterEach(() => stack?.assertRunning());
after(async () => {
  await relay?.close();
  await stack?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const bodyHas = (rec, tag) => rec.body.toString('utf8').includes(tag);
const textOf = (content) => (typeof content === 'string' ? content : (content ?? []).map((p) => p.text ?? '').join(''));

// Runs an agent; resolves with { code, signal, stdout, stderr, timedOut }. A run that outlives
// `timeoutMs` is killed (SIGKILL) and reported as timed out.
function runAgent(command, args, { cwd, env, timeoutMs = AGENT_TIMEOUT_MS }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function describeRun(run) {
  return `exit ${run.code} (signal ${run.signal}${run.timedOut ? ', killed after the timeout' : ''})\nstdout:\n${run.stdout.slice(-4000)}\nstderr:\n${run.stderr.slice(-4000)}\nengine saw ${engine.count} request(s); the relay saw ${relay.requests.map((r) => `${r.method} ${r.url} → ${r.status}`).join(', ')}`;
}

// A scratch HOME and working directory holding notes.txt with a fresh secret.
function workspace(name) {
  const root = join(scratch, name);
  const home = join(root, 'home');
  const work = join(root, 'work');
  mkdirSync(home, { recursive: true });
  mkdirSync(work, { recursive: true });
  const secret = `file-secret-${randomUUID()}`;
  writeFileSync(join(work, 'notes.txt'), `${secret}\n`);
  return { root, home, work, secret, file: join(work, 'notes.txt') };
}

// Identifying request headers an agent sends; none may reach the engine (only ciphertext leaves
// the proxy, and the gateway forwards none of the client's headers).
function assertNoIdentifiersAtEngine(agentRequests, engineRequests, headerNames) {
  const values = new Set();
  for (const r of agentRequests) {
    for (const h of headerNames) if (typeof r.headers[h] === 'string' && r.headers[h].length >= 8) values.add(r.headers[h]);
  }
  for (const e of engineRequests) {
    for (const h of headerNames) assert.equal(e.headers[h], undefined, `header ${h} reached the engine`);
    const seen = JSON.stringify(e.headers) + e.body.toString('utf8');
    for (const v of values) assert.ok(!seen.includes(v), `the identifier ${v} reached the engine`);
  }
}

// Two set-ups: the documented gateway one (experimental betas off) with the Read tool, and Claude
// Code's defaults (betas on: adaptive thinking with display "omitted", context_management, a
// defer_loading tool) with the Bash tool.
const CLAUDE_CASES = [
  { name: 'betas off, Read tool', tool: 'Read', betas: false, args: (ws) => ({ file_path: ws.file }) },
  { name: 'default betas, Bash tool', tool: 'Bash', betas: true, args: () => ({ command: 'cat notes.txt', description: 'Show notes.txt' }) },
];

describe('Claude Code (claude -p)', () => {
  for (const k of CLAUDE_CASES) {
    test(`${k.name}: the engine asks for ${k.tool}, Claude Code runs it, sends the result, prints the final answer`, async () => {
      const ws = workspace(`claude-${k.tool}`);
      const tag = `cc-${randomUUID().slice(0, 8)}`;
      const marker = `CC-DONE-${randomUUID()}`;
      const callId = `call_${k.tool.toLowerCase()}_1`;
      const reasoning = `I should use ${k.tool} on notes.txt.`;
      const mine = (r) => r.path === '/v1/chat/completions' && bodyHas(r, tag);
      const hasToolResult = (r) => (r.json?.messages ?? []).some((m) => m.role === 'tool');
      engine.when((r) => mine(r) && !hasToolResult(r), {
        frames: deltaFrames({
          model: MODEL,
          finishReason: 'tool_calls',
          deltas: [{ reasoning_content: reasoning }, { content: 'Reading the file.' }, ...toolCallDeltas(0, callId, k.tool, JSON.stringify(k.args(ws)), 3)],
          usage: { prompt_tokens: 900, completion_tokens: 20, total_tokens: 920 },
        }),
      });
      engine.when((r) => mine(r) && hasToolResult(r), {
        frames: deltaFrames({ model: MODEL, deltas: [{ content: 'The file says: ' }, { content: marker }], usage: { prompt_tokens: 950, completion_tokens: 12, total_tokens: 962 } }),
      });
      const relayFrom = relay.requests.length;
      const env = {
        PATH: process.env.PATH,
        HOME: ws.home,
        CLAUDE_CONFIG_DIR: join(ws.home, '.claude'),
        ANTHROPIC_BASE_URL: relay.url,
        ANTHROPIC_AUTH_TOKEN: 'cpk-claude-code-test',
        ANTHROPIC_MODEL: MODEL,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: MODEL,
        ANTHROPIC_DEFAULT_SONNET_MODEL: MODEL,
        ANTHROPIC_DEFAULT_OPUS_MODEL: MODEL,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_ERROR_REPORTING: '1',
        DISABLE_AUTOUPDATER: '1',
      };
      if (!k.betas) env.CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS = '1';
      const run = await runAgent(CLAUDE, ['-p', `Show me what the file notes.txt says. (${tag})`, '--output-format', 'json', '--allowedTools', k.tool, '--max-turns', '4'], { cwd: ws.work, env });
      assert.equal(run.code, 0, describeRun(run));
      let result;
      try {
        result = JSON.parse(run.stdout);
      } catch {
        assert.fail(`claude did not print one JSON object: ${describeRun(run)}`);
      }
      assert.equal(result.type, 'result', describeRun(run));
      assert.equal(result.subtype, 'success', describeRun(run));
      assert.equal(result.is_error, false, describeRun(run));
      assert.ok(result.result.includes(marker), `the printed result lacks the marker: ${result.result}`);
      assert.equal(result.num_turns, 2, describeRun(run));

      // Exactly the two scripted turns reached the engine.
      const turns = engine.requests.filter(mine);
      assert.equal(turns.length, 2, `expected 2 engine turns, got ${turns.length}: ${describeRun(run)}`);
      const [t1, t2] = turns.map((r) => r.json);
      assert.equal(t1.stream, true);
      assert.ok(t1.tools.some((t) => t.type === 'function' && t.function.name === k.tool), `${k.tool} was not offered to the engine`);
      assert.ok(!t1.messages.some((m) => m.role === 'tool'));
      // Turn 2: the call as the assistant made it, then its result with the file's contents.
      const ai = t2.messages.findIndex((m) => m.role === 'assistant' && m.tool_calls?.length);
      assert.ok(ai > 0, JSON.stringify(t2.messages.map((m) => m.role)));
      const asst = t2.messages[ai];
      assert.deepEqual(asst.tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]), [[callId, k.tool, k.args(ws)]]);
      assert.equal(textOf(asst.content), 'Reading the file.');
      const toolMsg = t2.messages[ai + 1];
      assert.equal(toolMsg.role, 'tool');
      assert.equal(toolMsg.tool_call_id, callId);
      assert.ok(textOf(toolMsg.content).includes(ws.secret), `the tool result lacks the file's contents: ${JSON.stringify(toolMsg.content)}`);

      // What Claude Code sent: only POST /v1/messages (with ?beta=true), all answered 200.
      const sent = relay.requests.slice(relayFrom);
      assert.ok(sent.length >= 2, describeRun(run));
      for (const r of sent) {
        assert.equal(r.method, 'POST');
        assert.match(r.url, /^\/v1\/messages(\?|$)/);
        assert.equal(r.status, 200, `${r.method} ${r.url} → ${r.status}`);
      }
      assertNoIdentifiersAtEngine(sent, turns, ['x-claude-code-session-id', 'user-agent', 'anthropic-beta', 'x-app', 'authorization']);
      // metadata.user_id (device and session ids) never reaches the engine.
      const userId = JSON.parse(sent[0].body).metadata?.user_id;
      if (userId) for (const t of turns) assert.ok(!bodyHas(t, typeof userId === 'string' ? userId : JSON.stringify(userId)), 'metadata.user_id reached the engine');
      // Last: the model's own reasoning comes back to it within the tool loop (Qwen3/GLM/DeepSeek
      // templates render reasoning_content for the current turn). Claude Code echoes the thinking
      // block it was given; with display "omitted" that block must still carry it (e.g. in its
      // signature, which only this proxy reads).
      assert.equal(asst.reasoning_content, reasoning, `the reasoning of turn 1 did not come back in turn 2: ${JSON.stringify(asst)}`);
    });
  }
});

describe('Codex (codex exec)', () => {
  test('shell tool round trip: the engine calls the advertised shell tool, Codex runs it, sends the output, prints the final answer', async () => {
    const ws = workspace('codex');
    const tag = `cx-${randomUUID().slice(0, 8)}`;
    const marker = `CX-DONE-${randomUUID()}`;
    const callId = 'call_exec_1';
    const reasoning = 'The user wants notes.txt: cat it.';
    writeFileSync(
      join(ws.home, 'config.toml'),
      [
        `model = "${MODEL}"`,
        'model_provider = "cproxy"',
        'approval_policy = "never"',
        'sandbox_mode = "read-only"',
        '',
        '[model_providers.cproxy]',
        'name = "Confidential proxy (test)"',
        `base_url = "${relay.url}/v1"`,
        'env_key = "CPROXY_API_KEY"',
        'wire_api = "responses"',
        'request_max_retries = 0',
        'stream_max_retries = 0',
        '',
      ].join('\n'),
    );
    const mine = (r) => r.path === '/v1/chat/completions' && bodyHas(r, tag);
    const hasToolResult = (r) => (r.json?.messages ?? []).some((m) => m.role === 'tool');
    let shellTool = null;
    // Turn 1: call the shell tool Codex advertised, with arguments shaped by its schema.
    engine.when((r) => mine(r) && !hasToolResult(r), (rec) => {
      const tools = (rec.json.tools ?? []).filter((t) => t.type === 'function');
      const tool = tools.find((t) => t.function.name === 'exec_command') ?? tools.find((t) => t.function.name === 'shell');
      shellTool = tool?.function ?? null;
      if (!tool) return { json: { object: 'error', message: 'test: no shell tool offered', type: 'BadRequestError', param: null, code: 400 }, status: 400 };
      const props = tool.function.parameters?.properties ?? {};
      const args = props.cmd ? { cmd: 'cat notes.txt' } : { command: ['cat', 'notes.txt'] };
      return { frames: deltaFrames({ model: MODEL, finishReason: 'tool_calls', deltas: [{ reasoning_content: reasoning }, ...toolCallDeltas(0, callId, tool.function.name, JSON.stringify(args), 3)], usage: { prompt_tokens: 800, completion_tokens: 15, total_tokens: 815 } }) };
    });
    engine.when((r) => mine(r) && hasToolResult(r), {
      frames: deltaFrames({ model: MODEL, deltas: [{ content: 'notes.txt holds the secret. ' }, { content: marker }], usage: { prompt_tokens: 850, completion_tokens: 10, total_tokens: 860 } }),
    });
    const relayFrom = relay.requests.length;
    const run = await runAgent(CODEX, ['exec', '--skip-git-repo-check', '--color', 'never', `Show me what notes.txt contains. (${tag})`], {
      cwd: ws.work,
      env: { PATH: process.env.PATH, HOME: ws.home, CODEX_HOME: ws.home, CPROXY_API_KEY: 'cpk-codex-test' },
    });
    assert.equal(run.code, 0, describeRun(run));
    assert.ok(run.stdout.includes(marker), `codex did not print the marker: ${describeRun(run)}`);
    assert.ok(shellTool, `Codex offered no exec_command/shell function tool: ${describeRun(run)}`);

    const turns = engine.requests.filter(mine);
    assert.equal(turns.length, 2, `expected 2 engine turns, got ${turns.length}: ${describeRun(run)}`);
    const t2 = turns[1].json;
    const ai = t2.messages.findIndex((m) => m.role === 'assistant' && m.tool_calls?.length);
    assert.ok(ai > 0, JSON.stringify(t2.messages.map((m) => m.role)));
    assert.deepEqual(t2.messages[ai].tool_calls.map((c) => [c.id, c.function.name]), [[callId, shellTool.name]]);
    const out = t2.messages[ai + 1];
    assert.equal(out.role, 'tool');
    assert.equal(out.tool_call_id, callId);
    assert.ok(textOf(out.content).includes(ws.secret), `the command output lacks the file's contents: ${JSON.stringify(out.content)}`);

    // What Codex sent: POST /v1/responses only, all 200; its second request carries the
    // function_call and the function_call_output with the command's output.
    const sent = relay.requests.slice(relayFrom);
    for (const r of sent) {
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/v1/responses');
      assert.equal(r.status, 200, `${r.method} ${r.url} → ${r.status}`);
    }
    const second = JSON.parse(sent.at(-1).body);
    const call = second.input.find((i) => i.type === 'function_call');
    const output = second.input.find((i) => i.type === 'function_call_output');
    assert.equal(call?.call_id, callId);
    assert.equal(output?.call_id, callId);
    assert.ok(JSON.stringify(output.output).includes(ws.secret));
    // Codex echoes the reasoning item back; the engine gets it as the assistant's reasoning_content.
    const item = second.input.find((i) => i.type === 'reasoning');
    assert.ok(item, `Codex did not send the reasoning item back: ${JSON.stringify(second.input.map((i) => i.type))}`);
    assert.equal(t2.messages[ai].reasoning_content, reasoning, JSON.stringify(t2.messages[ai]));
    assertNoIdentifiersAtEngine(sent, turns, ['session-id', 'thread-id', 'session_id', 'x-codex-turn-metadata', 'x-codex-window-id', 'x-client-request-id', 'user-agent', 'originator', 'authorization']);
  });
});
