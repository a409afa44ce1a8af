// The llama.cpp side of `./bdserve bench peer`: node-llama-cpp's prebuilt CPU library, driven over stdin/stdout so the
// Java side can alternate it with bdserve on the same GGUF file and the same prompt ids.
//
// usage: node llamacpp_peer.mjs LLAMACPP_DIR CONFIG_JSON
//   CONFIG_JSON: {"model", "threads", "batchTokens", "singleContext", "batchSequences", "batchContext"}
//   (batchSequences 0: no batch context)
// Every answer is one line "@peer {json}" on stdout (other lines are the library's logs). The first answer
// describes the library; then one answer per command line read from stdin:
//   {"op": "single", "prompt": [ids], "decode": N}
//       one fresh sequence: prefill_s = from evaluating the prompt until its first greedy token is available,
//       decode_s = the N tokens after it (N more evaluations, one token each)
//   {"op": "batch", "prompts": [[ids], ...], "gen": G}
//       every prompt on its own fresh sequence of one context, all at once (node-llama-cpp batches the sequences'
//       pending tokens together); seconds = wall time from the first submission until each sequence has G tokens,
//       the one from its prefill included
//   {"op": "quit"}
// Greedy (temperature 0), end-of-generation tokens are generated like any other (yieldEogToken).
import {pathToFileURL} from "node:url";
import {readFileSync} from "node:fs";
import {createInterface} from "node:readline";
import {performance} from "node:perf_hooks";

const [dir, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const answer = o => process.stdout.write("@peer " + JSON.stringify(o) + "\n");
const sampling = {temperature: 0, yieldEogToken: true};

try {
    const pkg = JSON.parse(readFileSync(dir + "/node_modules/node-llama-cpp/package.json", "utf8"));
    const {getLlama} = await import(pathToFileURL(dir + "/node_modules/node-llama-cpp/dist/index.js").href);
    // maxThreads 0: no cap, so a context runs on exactly the threads it asks for
    const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});
    const model = await llama.loadModel({modelPath: config.model});
    const contextOptions = n => ({threads: config.threads, batchSize: config.batchTokens, sequences: n});
    const single = await model.createContext({...contextOptions(1), contextSize: config.singleContext});
    const batch = config.batchSequences > 0
        ? await model.createContext({...contextOptions(config.batchSequences), contextSize: config.batchContext}) : null;
    const sequences = batch ? Array.from({length: config.batchSequences}, () => batch.getSequence()) : [];
    const singleSeq = single.getSequence();
    // the CPU kernels' variant ggml picked for this host (libggml-cpu-<variant>.so)
    const maps = readFileSync("/proc/self/maps", "utf8").match(/libggml-cpu-([\w-]+)\.so/);
    answer({
        package: "node-llama-cpp " + pkg.version,
        llama_cpp_release: llama.llamaCppRelease.repo + " " + llama.llamaCppRelease.release,
        build_type: llama.buildType,
        cpu_variant: maps ? maps[1] : "unknown",
        system_info: llama.systemInfo.trim(),
        model_type: model.typeDescription,
        context_size_single: single.contextSize,
        context_size_per_sequence_batch: batch ? batch.contextSize : 0,
        batch_size: single.batchSize,
    });

    /** Takes n tokens from a generator: the first comes from the prompt's evaluation, each other from one more. */
    async function take(gen, n) {
        for (let i = 0; i < n; i++) if ((await gen.next()).done) throw new Error("generation ended after " + i + " tokens");
        await gen.return();
    }

    const lines = createInterface({input: process.stdin});
    for await (const line of lines) {
        if (!line.trim()) continue;
        const cmd = JSON.parse(line);
        if (cmd.op === "quit") break;
        if (cmd.op === "single") {
            await singleSeq.clearHistory();
            const gen = singleSeq.evaluate(cmd.prompt, sampling);
            const t0 = performance.now();
            if ((await gen.next()).done) throw new Error("no token after the prompt");
            const t1 = performance.now();
            for (let i = 0; i < cmd.decode; i++) if ((await gen.next()).done) throw new Error("generation ended after " + i + " tokens");
            const t2 = performance.now();
            await gen.return();
            answer({prefill_s: (t1 - t0) / 1000, decode_s: (t2 - t1) / 1000});
        } else if (cmd.op === "batch") {
            if (cmd.prompts.length > sequences.length) throw new Error(cmd.prompts.length + " prompts for " + sequences.length + " sequences");
            await Promise.all(sequences.map(s => s.clearHistory()));
            const t0 = performance.now();
            await Promise.all(cmd.prompts.map((p, i) => take(sequences[i].evaluate(p, sampling), cmd.gen)));
            answer({seconds: (performance.now() - t0) / 1000});
        } else {
            throw new Error("unknown op " + cmd.op);
        }
    }
    process.exit(0);
} catch (e) {
    answer({error: String(e && e.stack || e)});
    process.exit(1);
}
