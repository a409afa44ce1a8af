package dev.bdserve.structured;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Mask time on the acceptance benchmark's shape: 8 constrained streams of 128 tokens on the 128K Llama-3 vocabulary,
 * a nested schema whose outputs are far longer (an array of up to 1,000 objects). Prints p50/p99; asserts only that
 * every mask was non-empty and every allowed token taken (no speed assertion).
 */
class MaskTimingReport {
    static final String RECORDS = """
            {"type":"object","properties":{"records":{"type":"array","maxItems":1000,"items":{"type":"object","properties":{
              "id":{"type":"integer","minimum":0,"maximum":1000000},
              "name":{"type":"string","maxLength":40},
              "tags":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":4},
              "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","pattern":"^\\\\d{5}$"}},
                "required":["city","zip"],"additionalProperties":false}},
              "required":["id","name","address"],"additionalProperties":false}}},
             "required":["records"],"additionalProperties":false}""";

    @Test
    void maskTimeOnLlama3() throws Exception {
        long v0 = System.nanoTime();
        TokenVocabulary v = Walks.real("llama3");
        long c0 = System.nanoTime();
        Constraint.jsonSchema(RECORDS);
        System.out.printf("Llama-3 vocabulary (with the tokenizer load) %.0f ms, %d trie nodes; compiling the schema %.1f ms%n",
                (c0 - v0) / 1e6, v.trieNodes(), (System.nanoTime() - c0) / 1e6);
        for (boolean shared : new boolean[]{false, true}) {
            Constraint one = Constraint.jsonSchema(RECORDS);
            List<Long> nanos = new ArrayList<>(), cpu = new ArrayList<>();
            Random r = new Random(1);
            long t0 = System.nanoTime();
            for (int stream = 0; stream < 8; stream++) {
                Constraint c = shared ? one : Constraint.jsonSchema(RECORDS);
                Walks.walk(c, v, r, 128, nanos, cpu, false);
            }
            long wall = System.nanoTime() - t0;
            List<Long> sorted = new ArrayList<>(nanos);
            sorted.sort(null);
            assertTrue(sorted.size() >= 8, "the walks ended early: " + sorted.size() + " masks");
            System.out.printf("mask time, Llama-3 128K, nested schema, %d masks in %.1f s, constraint %s: p50 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms%n",
                    sorted.size(), wall / 1e9, shared ? "shared" : "per stream", sorted.get(sorted.size() / 2) / 1e6, sorted.get(sorted.size() * 99 / 100) / 1e6,
                    sorted.getLast() / 1e6, sorted.stream().mapToLong(Long::longValue).average().orElse(0) / 1e6);
            cpu.sort(null);
            System.out.printf("  the same masks in thread CPU time (this machine is shared): p50 %.3f ms, p99 %.3f ms, mean %.3f ms%n",
                    cpu.get(cpu.size() / 2) / 1e6, cpu.get(cpu.size() * 99 / 100) / 1e6, cpu.stream().mapToLong(Long::longValue).average().orElse(0) / 1e6);
            if (shared) System.out.println("states memoized by the shared constraint: " + one.space().size());
        }
    }
}
