// Greedy continuation of prompt token ids by llama.cpp (node-llama-cpp's prebuilt CPU library).
// usage: node llamacpp_greedy.mjs LLAMACPP_DIR MODEL.gguf N_TOKENS ID,ID,...
// prints the generated ids on one line.
import {pathToFileURL} from "node:url";

const [dir, model, n, ids] = process.argv.slice(2);
const {getLlama} = await import(pathToFileURL(dir + "/node_modules/node-llama-cpp/dist/index.js").href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const m = await llama.loadModel({modelPath: model});
const ctx = await m.createContext({contextSize: 256, threads: 1});
const seq = ctx.getSequence();
const out = [];
for await (const t of seq.evaluate(ids.split(",").map(Number), {temperature: 0})) {
    out.push(t);
    if (out.length >= Number(n)) break;
}
console.log(out.join(" "));
process.exit(0);
