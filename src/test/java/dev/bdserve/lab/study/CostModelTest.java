package dev.bdserve.lab.study;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class CostModelTest {
    @Test
    void leastSquaresRecoversKnownCoefficients() {
        SplittableRandom r = new SplittableRandom(1);
        List<double[]> xs = new ArrayList<>();
        List<Double> ys = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            double a = r.nextDouble(1, 100), b = r.nextDouble(0, 5);
            xs.add(new double[] {a, b});
            ys.add(0.02 * a + 1.5 * b);
        }
        CostModel.Fit f = CostModel.leastSquares(new String[] {"alpha", "beta"}, xs, ys);
        assertEquals(0.02, f.coef()[0], 1e-9);
        assertEquals(1.5, f.coef()[1], 1e-9);
        assertEquals(1.0, f.r2(), 1e-12);
        assertEquals(0.0, f.rmsRelError(), 1e-9);
    }

    @Test
    void tooFewPointsIsAClearError() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> CostModel.leastSquares(new String[] {"a", "b"}, List.<double[]>of(new double[] {1, 2}), List.of(1.0)));
        assertTrue(e.getMessage().contains("need at least 2 measurements"), e.getMessage());
    }

    @Test
    void parameterMatchedBdRankIsTwiceTheDenseRankAtEightBlocksOnLlama31() {
        // spec §2: at nblocks 8 on Llama-3.1 shapes, the parameter-matched BD rank is 2x the LoRA rank (0.86x the parameters for 8B)
        var s = CostModel.Shape.LLAMA_31_8B;
        assertEquals(32, s.parameterMatchedBdRank(16, 8));
        assertEquals(0.86, s.bdParams(32, 8) / (double) s.loraParams(16), 0.01);
        assertEquals(1.73, s.bdParams(64, 8) / (double) s.loraParams(16), 0.01);
    }

    @Test
    void sLoraAddsFourCollectivesPerLayerAndBdLoraNone() {
        var g = CostModel.Gpu.A100_NVLINK;
        var s = CostModel.Shape.LLAMA_31_8B;
        assertEquals(2 * 32 + 1, CostModel.decodeStep(g, s, 8, 16, 1024, "bdlora", 32, 8).collectives());
        assertEquals(6 * 32 + 1, CostModel.decodeStep(g, s, 8, 16, 1024, "slora", 16, 8).collectives());
        assertEquals(0, CostModel.decodeStep(g, s, 8, 16, 1024, "bdlora", 32, 8).loraCollUs());
        // the extra S-LoRA collective time is 4 per layer at ≥ α each
        assertTrue(CostModel.decodeStep(g, s, 8, 16, 1024, "slora", 16, 8).loraCollUs() >= 4 * 32 * g.alphaUs());
    }

    @Test
    void fitOnSyntheticStudyRows() {
        ObjectMapper m = new ObjectMapper();
        List<JsonNode> rows = new ArrayList<>();
        int i = 0;
        for (int batch : new int[] {1, 4, 16})
            for (double count : new double[] {25, 73}) {
                ObjectNode o = m.createObjectNode();
                double bytes = 1000.0 * batch * count, weight = 1.4e8, lora = count * 1e5 * batch;
                o.put("point", "p" + (i++)).put("tp", 2).put("transport", "threads").put("batch", batch).put("params", 1.6e8)
                        .put("weight_bytes_per_step_rank0", weight).put("lora_flops_per_step_rank0", lora)
                        .put("collectives_per_step_total", count).put("collective_bytes_per_step_total", bytes);
                double coll = 0.05 * count + 2.0 * bytes / 1e6;
                double compute = 100 * weight / 1e9 + 1.0 * 2 * 1.6e8 / 2 * batch / 1e9 + 3.0 * lora / 1e9;
                o.put("collective_ms_per_decode_step", coll).put("decode_ms_per_step", coll + compute);
                rows.add(o);
            }
        CostModel.Fitted f = CostModel.fit(rows);
        assertEquals(0.05, f.comm().get("threads").coef()[0], 1e-9);
        assertEquals(2.0, f.comm().get("threads").coef()[1], 1e-9);
        assertEquals(100, f.compute().coef()[0], 1e-6);
        assertEquals(1.0, f.compute().coef()[1], 1e-9);
        assertEquals(3.0, f.compute().coef()[2], 1e-6);
    }
}
