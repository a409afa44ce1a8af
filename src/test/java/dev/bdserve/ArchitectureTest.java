package dev.bdserve;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The package boundaries the build enforces on src/main: the serving runtime does not reach the research harness
 * ({@code lab}), the benchmarks or the cli, nor the plotting and progress-bar libraries that only those use, directly
 * or through another class; the benchmarks do not use the harness; the harness does not use the cli; the model
 * does not know the lora package that implements its adapter updates, nor the engine that drives it; structured output
 * (constraints and token masks) needs only the tokenizer. The cli may use
 * everything.
 */
@AnalyzeClasses(packages = "dev.bdserve", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {
    static final String[] RUNTIME = {"dev.bdserve.server..", "dev.bdserve.engine..", "dev.bdserve.model..",
            "dev.bdserve.lora..", "dev.bdserve.tensor..", "dev.bdserve.parallel..", "dev.bdserve.tokenizer..",
            "dev.bdserve.structured.."};
    static final String XCHART = "org.knowm.xchart..", PROGRESS_BAR = "me.tongfei.progressbar..";

    @ArchTest
    static final ArchRule runtimeUsesNoHarnessBenchOrCli = noClasses().that().resideInAnyPackage(RUNTIME)
            .should().transitivelyDependOnClassesThat().resideInAnyPackage("dev.bdserve.lab..", "dev.bdserve.bench..", "dev.bdserve.cli..",
                    XCHART, PROGRESS_BAR)
            .because("the serving runtime must not carry the research harness, the benchmarks, the cli or their libraries");

    @ArchTest
    static final ArchRule benchUsesNoHarnessOrCli = noClasses().that().resideInAPackage("dev.bdserve.bench..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.bdserve.lab..", "dev.bdserve.cli..", XCHART, PROGRESS_BAR)
            .because("the benchmarks measure the runtime alone");

    @ArchTest
    static final ArchRule harnessUsesNoCli = noClasses().that().resideInAPackage("dev.bdserve.lab..")
            .should().dependOnClassesThat().resideInAPackage("dev.bdserve.cli..")
            .because("the cli drives the harness, not the other way round");

    @ArchTest
    static final ArchRule modelUsesNoLoraOrEngine = noClasses().that().resideInAPackage("dev.bdserve.model..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.bdserve.lora..", "dev.bdserve.engine..", "dev.bdserve.server..")
            .because("lora implements the model's AdapterUpdates; a model that imported lora back would make one knot of both");

    @ArchTest
    static final ArchRule structuredIsALibrary = noClasses().that().resideInAPackage("dev.bdserve.structured..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.bdserve.server..", "dev.bdserve.engine..", "dev.bdserve.model..",
                    "dev.bdserve.lora..", "dev.bdserve.tensor..", "dev.bdserve.parallel..")
            .because("the constraint core knows tokens and bytes only; the engine and the server use it, not the other way round");
}
