import pytest

from controlplane.model import ManifestError, parse_manifests

GOOD = """
apiVersion: awan.dev/v1alpha1
kind: GPUWorkload
metadata: {name: llm-pretrain-7, team: research, labels: {data-class: eu-personal}}
spec:
  kind: training
  gpus: {model: [GB200, b200], count: 144, perNode: 4}
  topology: {domain: nvlink, domainSize: 72}
  capacityType: [reserved, on-demand]
  location: {geo: [us, eu], regions: ["aws:us-east-*", "gcp:europe-west4"]}
  maxPricePerGpuHour: 6.0
  priority: 100
"""


def test_design_doc_example_parses_with_normalised_models():
    [w] = parse_manifests(GOOD, "a.yaml")
    assert w.name == "llm-pretrain-7" and w.team == "research"
    assert w.spec.gpus.model == ["GB200", "B200"]
    assert w.total_gpus == 144
    assert w.spec.topology.domain_size == 72


def test_several_documents_json_and_single_string_model():
    text = '[{"metadata": {"name": "a"}, "spec": {"gpus": {"model": "H100", "count": 8}}},' \
           ' {"metadata": {"name": "b"}, "spec": {"kind": "inference", "replicas": 3, "gpus": {"model": "L4", "count": 1}}}]'
    ws = parse_manifests(text)
    assert [w.name for w in ws] == ["a", "b"]
    assert ws[1].total_gpus == 3


@pytest.mark.parametrize("spec, needle", [
    ("{gpus: {model: H100, count: 0}}", "spec.gpus.count"),
    ("{gpus: {model: H100, count: 8, perNode: 3}}", "perNode 3 does not divide count 8"),
    ("{gpus: {model: H999, count: 8}}", "unknown GPU model 'H999'"),
    ("{gpus: {model: GB200, count: 72, perNode: 8}, topology: {domain: nvlink, domainSize: 36}}",
     "domainSize 36 is not a multiple of gpus.perNode 8"),
    ("{gpus: {model: GB200, count: 100, perNode: 4}, topology: {domain: nvlink, domainSize: 72}}",
     "not a multiple of topology.domainSize 72"),
    ("{gpus: {model: H100, count: 8}, topology: {domain: zone, domainSize: 8}}", "only meaningful with domain: nvlink"),
    ("{gpus: {model: H100, count: 8}, colour: blue}", "spec.colour: unknown field"),
    ("{gpus: {model: H100, count: eight}}", "spec.gpus.count"),
    ("{gpus: {model: H100, count: 8}, capacityType: [cheap]}", "spec.capacityType[0]"),
])
def test_bad_specs_name_the_field(spec, needle):
    with pytest.raises(ManifestError) as e:
        parse_manifests(f"metadata: {{name: x}}\nspec: {spec}\n", "jobs.yaml")
    assert str(e.value).startswith("jobs.yaml: ")
    assert needle in str(e.value)


def test_error_names_the_document_and_nothing_is_returned_half_way():
    text = GOOD + "---\nmetadata: {name: b}\nspec: {gpus: {model: H100, count: -1}}\n"
    with pytest.raises(ManifestError, match=r"^jobs.yaml doc 2: spec.gpus.count"):
        parse_manifests(text, "jobs.yaml")


@pytest.mark.parametrize("text, needle", [
    ("metadata: {name: Bad_Name}\nspec: {gpus: {model: H100, count: 1}}", "metadata.name"),
    ("a: [1, 2\n", "not valid YAML"),
    ("{bad json", "not valid JSON"),
    ("", "no GPUWorkload documents"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("metadata: {name: a}\nspec: {gpus: {model: H100, count: 1}}\n---\nmetadata: {name: a}\n"
     "spec: {gpus: {model: H100, count: 1}}", "already used by doc 1"),
])
def test_bad_documents(text, needle):
    with pytest.raises(ManifestError, match=needle):
        parse_manifests(text, "f.yaml")


def test_labels_are_bounded_for_cel_rules():
    many = ", ".join(f"k{i}: v" for i in range(65))
    with pytest.raises(ManifestError, match="metadata.labels"):
        parse_manifests(f"metadata: {{name: x, labels: {{{many}}}}}\nspec: {{gpus: {{model: H100, count: 1}}}}\n")
    sixty_four = ", ".join(f"k{i}: v" for i in range(64))
    [w] = parse_manifests(f"metadata: {{name: x, labels: {{{sixty_four}}}}}\nspec: {{gpus: {{model: H100, count: 1}}}}\n")
    assert len(w.metadata.labels) == 64
