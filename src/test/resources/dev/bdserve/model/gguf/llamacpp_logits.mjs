// Greedy continuation of prompt token ids by llama.cpp (node-llama-cpp's prebuilt CPU library), with llama.cpp's raw
// logits over the whole vocabulary at every step.
// usage: node llamacpp_logits.mjs LLAMACPP_DIR OUT.jsonl VOCAB_SIZE N_TOKENS ID,ID,... MODEL.gguf [MODEL.gguf ...]
// writes to OUT.jsonl (a file: output to a pipe can be cut short by process.exit) one JSON line per model and step,
// {"model": i, "step": s, "token": t, "logits": [l_0, ..., l_(vocab-1)]}, where token is the argmax of the logits
// (lowest id on ties), fed back as the next input. The KV cache is F32 and flash attention off, so that attention
// adds no rounding of its own (llama.cpp's default cache is F16). The context holds $LLAMACPP_CONTEXT positions (default
// 256), which decides e.g. Phi-3's LongRoPE factors; with $LLAMACPP_LORA set, that GGUF LoRA adapter is applied (scale 1).
import {appendFileSync, writeFileSync} from "node:fs";
import {pathToFileURL} from "node:url";

const [dir, out, vocabSize, n, ids, ...models] = process.argv.slice(2);
writeFileSync(out, "");
const {getLlama} = await import(pathToFileURL(dir + "/node_modules/node-llama-cpp/dist/index.js").href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const prompt = ids.split(",").map(Number);
const steps = Number(n), vocab = Number(vocabSize);

for (let mi = 0; mi < models.length; mi++) {
    const model = await llama.loadModel({modelPath: models[mi]});
    const ctx = await model.createContext({
        contextSize: Number(process.env.LLAMACPP_CONTEXT ?? 256), threads: 1, batchSize: 256, flashAttention: false,
        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
        ...(process.env.LLAMACPP_LORA ? {lora: {adapters: [{filePath: process.env.LLAMACPP_LORA, scale: 1}]}} : {}),
    });
    const seq = ctx.getSequence();
    let input = prompt.map((t, i) => i === prompt.length - 1 ? [t, {generateNext: {logits: true}}] : t);
    for (let s = 0; s < steps; s++) {
        const res = await seq.controlledEvaluate(input);
        const map = res[res.length - 1]?.next?.logits;
        if (map == null || map.size !== vocab)
            throw new Error(`step ${s}: expected logits for all ${vocab} tokens, got ${map == null ? "none" : map.size}`);
        const row = new Array(vocab);
        for (const [t, l] of map) row[t] = l;
        let best = 0;
        for (let t = 1; t < vocab; t++) if (row[t] > row[best]) best = t;
        appendFileSync(out, JSON.stringify({model: mi, step: s, token: best, logits: row}) + "\n");
        input = [[best, {generateNext: {logits: true}}]];
    }
    await ctx.dispose();
    await model.dispose();
}
process.exit(0);
