// A streamed chat completion through e2ee-proxy with the official OpenAI SDK: nothing about the
// client changes except its base URL. Usage: E2EE_BASE_URL=http://127.0.0.1:8080/v1 node openai_stream.mjs "prompt"
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.E2EE_BASE_URL ?? 'http://127.0.0.1:8080/v1',
  apiKey: process.env.E2EE_API_KEY ?? 'demo-key',
});
const model = process.env.E2EE_MODEL ?? 'demo/echo';
const prompt = process.argv[2] ?? 'Say hello.';

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: prompt }],
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
process.stdout.write('\n');
