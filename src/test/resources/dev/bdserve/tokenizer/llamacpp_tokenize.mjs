// Tokenizes texts with llama.cpp (node-llama-cpp's prebuilt CPU library), loading only the vocabulary of a GGUF file.
// usage: node llamacpp_tokenize.mjs LLAMACPP_DIR MODEL.gguf VOCAB_SIZE TEXTS.json
// TEXTS.json holds a JSON array of strings. Prints one JSON line: the vocabulary's BOS and EOS ids, whether llama.cpp
// adds them (llama_vocab_get_add_bos / _add_eos), the end-of-generation ids, and per text the tokens of
// llama_tokenize with special-token parsing and without adding BOS/EOS.
import {pathToFileURL} from "node:url";
import {readFileSync} from "node:fs";

const [dir, model, vocabSize, textsFile] = process.argv.slice(2);
const {getLlama} = await import(pathToFileURL(dir + "/node_modules/node-llama-cpp/dist/index.js").href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const m = await llama.loadModel({modelPath: model, vocabOnly: true});
const texts = JSON.parse(readFileSync(textsFile, "utf8"));
const eog = [];
const n = Number(vocabSize);
for (let id = 0; id < n; id++) if (m._model.isEogToken(id)) eog.push(id);
const out = {
    bos: m.tokens.bos ?? -1,
    eos: m.tokens.eos ?? -1,
    addBos: m._model.shouldPrependBosToken(),
    addEos: m._model.shouldAppendEosToken(),
    eog,
    tokens: texts.map(t => t === "" ? [] : Array.from(m.tokenize(t, true))),
};
console.log(JSON.stringify(out));
process.exit(0);
