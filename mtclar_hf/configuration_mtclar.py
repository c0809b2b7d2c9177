"""MT-CLAR model configuration."""

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

# The reference evaluation geometry: resize to 288, centre crop 256 (the network's input size).
IMAGE_SIZE = 256
RESIZE_SIZE = 288

# ResNet-18 shape (basic blocks, 2-2-2-2) built from transformers' own ResNetConfig: a pure-torch
# encoder with no torchvision/timm dependency.
RESNET18_BACKBONE = {
    "model_type": "resnet",
    "embedding_size": 64,
    "hidden_sizes": [64, 128, 256, 512],
    "depths": [2, 2, 2, 2],
    "layer_type": "basic",
}

AFFECTNET_CLASS_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")

# Each fusion of the two embeddings A and B: the parts concatenated, in order, into the vector the heads read.
FUSIONS = {
    "concat": ("a", "b"),
    "abs_diff": ("abs_diff",),
    "mul": ("mul",),
    "diff": ("diff",),
    "concat_diff": ("a", "b", "diff"),
}
ENCODERS = ("backbone", "emofan")


@strict
class MTCLARConfig(PreTrainedConfig):
    r"""
    Configuration of an MT-CLAR Siamese network (Parameshwara et al., ACM MM 2023) and of its
    singleton-image MT-CLAR+SL head.

    encoder (`str`, defaults to `"backbone"`):
        `"backbone"`: any transformers vision model (`resnet`, `convnext`, `vit`, `dinov2`, ...), built with
        `AutoModel.from_config(backbone_config)`; `"emofan"`: our implementation of the EmoNet/EmoFAN encoder
        (set up by the `emofan_*` fields, no `backbone_config`).
    backbone_config (`dict` or `PreTrainedConfig`, *optional*):
        The backbone's config (a dict needs its `model_type`). Defaults to a ResNet-18-shaped `ResNetConfig` for
        `encoder="backbone"`; always `None` for `encoder="emofan"`. Backbones with an `image_size` get ours.
        Configs written before the sub-config existed (`encoder=<model_type>` with an `encoder_config` dict) are
        converted when they are read, and the same two keyword arguments are still accepted.
    embedding_size (`int`, defaults to 256):
        Size of one image's embedding. A linear projection is added when the backbone's pooled output differs.
    fusion (`str`, defaults to `"concat"`):
        How the two embeddings are fused before the heads: `"concat"` (the reference), `"abs_diff"`, `"mul"`,
        `"diff"` (A - B) or `"concat_diff"` ([A, B, A - B]). The last two keep the sign of the difference, which
        lets the valence/arousal-difference heads learn much faster (see docs/TRAINING.md).
    projector_widths (`list[int]`, defaults to `[2048, 1024, 512, 128]`):
        Hidden widths of each of the three projector MLPs (similarity, valence and arousal difference).
    difference_head_widths (`list[int]`, *optional*):
        Hidden widths of the valence/arousal-difference heads only; `None` (default) uses `projector_widths`, `[]`
        makes them linear. With `fusion="diff"`, linear heads compute `w . (embed(A) - embed(B))`: a difference
        of per-image scores (antisymmetric up to a learned bias), and the fastest to train (the quick SynthAffect recipe).
    dropout (`float`, defaults to 0.5):
        Dropout before every Linear of the projectors.
    num_similarity_classes (`int`, defaults to 2):
        Logits of the similarity head (0 = dissimilar, 1 = similar).
    diff_activation (`str`, defaults to `"tanh"`):
        Squash of the difference heads: `"tanh"` gives `(label_max - label_min) * tanh(x)`, i.e. the reference's
        `2 * tanh(x)` for labels in [-1, 1]; `"identity"` leaves it unbounded.
    image_size / resize_size (`int`, defaults to 256 / 288):
        Network input size and the resize before the centre (or random) crop.
    label_min / label_max (`float`, defaults to -1 / 1):
        Range of valence and arousal labels.
    tasks (`list[str]`):
        Enabled training tasks among `"similarity"`, `"contrastive"`, `"valence"`, `"arousal"`.
    cosine_margin (`float`, defaults to 0.25):
        Margin of the cosine embedding (contrastive) loss.
    dynamic_loss_exponent (`float`, defaults to 2.0):
        `w_mse = epoch_progress ** exponent`, `w_ccc = 1 - w_mse` in the valence/arousal difference losses.
    random_task_weights (`bool`, defaults to True):
        In training mode, draw the task weights from U(0, 1) and normalise them per batch (the paper's
        "shake-shake" combination); evaluation always uses equal weights.
    freeze_encoder_trunk (`bool`, defaults to True):
        For `encoder="emofan"`: keep the FAN landmark trunk frozen, as the reference does.
    num_expression_classes / sl_hidden_widths / expression_class_weights:
        The MT-CLAR+SL head (`MTCLARForAffectPrediction`): 8 AffectNet classes, MLP widths
        256 -> 1024 -> 512 -> 256 -> 128 as the reference, optional cross-entropy class weights.
    sl_hidden_bias (`bool`, defaults to False):
        Biases on the SL head's hidden Linear layers (the reference has none, as BatchNorm follows; EmoNet's
        head has them).
    sl_output_activation (`str`, defaults to `"tanh"`):
        `"tanh"` squashes valence and arousal into the label range; `"identity"` leaves them unbounded, as
        EmoNet's head does.
    affect_head (`bool`, defaults to False):
        `MTCLARModel` also carries the SL head, so that one encoder pass gives both the pair heads' inputs and
        single-image predictions (the `offset` anchor mode). Converted EmoNet folders use it for EmoNet's own head.
    pair_heads_trained (`bool`, defaults to True):
        False when the similarity / difference heads were never trained (a converted EmoNet folder): labelling
        then offers only the modes that do not use them.
    provenance (`dict`, *optional*):
        What the weights were made from: `dataset` (name), `synthetic` (bool) and, for converted weights,
        `source`, `license` and `redistributable`. `None` when unknown (folders saved without it).
    auto_anchor (`dict`, *optional*):
        What the `auto` anchor mode learned on validation clips (`mtclar calibrate`): `sparse_mode`, the mode for
        fewer than 3 anchors, `sparse_gain`, what it multiplies the pair heads' differences by there,
        `rmse_scale`, per mode the factor from leave-one-anchor-out RMSE to the RMSE query frames see, and
        `preferred_mode` / `switch_margin`, the mode another must beat by that factor. `None`: `latest` for sparse
        support, differences as they come, unscaled estimates and the lowest estimate wins.
    emofan_num_modules / emofan_n_blocks / emofan_attention:
        EmoFAN architecture (EmoNet's constructor defaults).

    Example:
    ```python
    >>> from mtclar_hf import MTCLARConfig, MTCLARModel
    >>> model = MTCLARModel(MTCLARConfig())          # ResNet-18-shaped encoder, 256-d embeddings
    >>> emofan = MTCLARConfig(encoder="emofan")      # EmoFAN encoder as in the paper
    ```
    """

    model_type = "mtclar"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet", optional=True),
    }
    # The order of the task losses in `loss_components` and `task_weights`.
    all_tasks: ClassVar[tuple[str, ...]] = ("similarity", "contrastive", "valence", "arousal")

    encoder: str = "backbone"
    backbone_config: dict | PreTrainedConfig | None = None
    embedding_size: int = 256
    fusion: str = "concat"
    projector_widths: list[int] | tuple[int, ...] = (2048, 1024, 512, 128)
    difference_head_widths: list[int] | tuple[int, ...] | None = None
    dropout: float = 0.5
    num_similarity_classes: int = 2
    diff_activation: str = "tanh"
    image_size: int = IMAGE_SIZE
    resize_size: int = RESIZE_SIZE
    label_min: float = -1.0
    label_max: float = 1.0
    tasks: list[str] | tuple[str, ...] = all_tasks
    cosine_margin: float = 0.25
    dynamic_loss_exponent: float = 2.0
    random_task_weights: bool = True
    freeze_encoder_trunk: bool = True
    num_expression_classes: int = 8
    sl_hidden_widths: list[int] | tuple[int, ...] = (1024, 512, 256, 128)
    expression_class_weights: list[float] | None = None
    sl_hidden_bias: bool = False
    sl_output_activation: str = "tanh"
    affect_head: bool = False
    pair_heads_trained: bool = True
    provenance: dict | None = None
    auto_anchor: dict | None = None
    emofan_num_modules: int = 2
    emofan_n_blocks: int = 4
    emofan_attention: bool = True

    def __post_init__(self, **kwargs):
        self.projector_widths = [int(w) for w in self.projector_widths]
        if self.difference_head_widths is not None:
            self.difference_head_widths = [int(w) for w in self.difference_head_widths]
        self.sl_hidden_widths = [int(w) for w in self.sl_hidden_widths]
        self.tasks = list(self.tasks)
        self._convert_encoder_config(kwargs.pop("encoder_config", None))
        if self.encoder == "backbone" and self.backbone_config is None:
            self.backbone_config = dict(RESNET18_BACKBONE)
        if isinstance(self.backbone_config, dict) and self.backbone_config.get("model_type") not in CONFIG_MAPPING:
            raise ValueError(f"backbone_config needs the model_type of a transformers model, got {self.backbone_config}")
        if self.id2label is None and kwargs.get("id2label") is None:
            self.id2label = dict(enumerate(AFFECTNET_CLASS_NAMES[: self.num_expression_classes]))
            self.label2id = {name: idx for idx, name in self.id2label.items()}
        kwargs.setdefault("num_labels", self.num_expression_classes)
        super().__post_init__(**kwargs)
        if hasattr(self.backbone_config, "image_size"):  # ViT-like backbones size their position embeddings by it
            self.backbone_config.image_size = self.image_size

    def _convert_encoder_config(self, encoder_config) -> None:
        """Read the older form: `encoder` naming the backbone's model_type ("resnet" by default) and `encoder_config`
        holding its arguments, merged over the ResNet-18 shape for "resnet". It becomes `encoder="backbone"` and
        `backbone_config`."""
        if self.encoder == "emofan" or (self.encoder == "backbone" and encoder_config is None):
            if encoder_config:
                raise ValueError("encoder_config must be empty for encoder='emofan' (use the emofan_* fields)")
            return
        model_type = "resnet" if self.encoder == "backbone" else self.encoder
        if model_type not in CONFIG_MAPPING:
            raise ValueError(f"encoder={model_type!r} is neither one of {ENCODERS} nor a transformers model_type")
        if self.backbone_config is not None:
            raise ValueError(f"encoder={model_type!r} names the backbone's model_type: pass encoder='backbone' with backbone_config")
        if isinstance(encoder_config, PreTrainedConfig):
            encoder_config = encoder_config.to_dict()
        defaults = RESNET18_BACKBONE if model_type == "resnet" else {"model_type": model_type}
        merged = {**defaults, **(encoder_config or {})}
        if merged["model_type"] != model_type:
            raise ValueError(
                f"encoder={model_type!r} but encoder_config has model_type={merged['model_type']!r}; they must agree"
            )
        self.encoder, self.backbone_config = "backbone", merged

    @property
    def difference_scale(self) -> float:
        return float(self.label_max - self.label_min)

    def validate_encoder(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.encoder == "emofan" and self.backbone_config is not None:
            raise ValueError("encoder='emofan' takes no backbone_config (use the emofan_* fields)")

    def validate_sizes(self):
        if self.embedding_size <= 0:
            raise ValueError(f"embedding_size must be positive, got {self.embedding_size}")
        # An empty list is allowed: linear heads straight on the fused embeddings.
        for name in ("projector_widths", "difference_head_widths"):
            widths = getattr(self, name) or []
            if any(not isinstance(w, int) or w <= 0 for w in widths):
                raise ValueError(f"{name} must be positive integers, got {widths}")
        if not self.sl_hidden_widths or any(w <= 0 for w in self.sl_hidden_widths):
            raise ValueError(f"sl_hidden_widths must be positive integers, got {self.sl_hidden_widths}")
        if not 0 < self.image_size <= self.resize_size:
            raise ValueError(f"need 0 < image_size <= resize_size, got {self.image_size} and {self.resize_size}")
        if self.num_similarity_classes < 2:
            raise ValueError(f"num_similarity_classes must be >= 2, got {self.num_similarity_classes}")
        if self.num_expression_classes < 2:
            raise ValueError(f"num_expression_classes must be >= 2, got {self.num_expression_classes}")
        weights = self.expression_class_weights
        if weights is not None and (len(weights) != self.num_expression_classes or min(weights) < 0):
            raise ValueError(
                f"expression_class_weights needs {self.num_expression_classes} non-negative values, got {weights}"
            )

    def validate_choices(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {tuple(FUSIONS)}, got {self.fusion!r}")
        for name in ("diff_activation", "sl_output_activation"):
            if getattr(self, name) not in ("tanh", "identity"):
                raise ValueError(f"{name} must be 'tanh' or 'identity', got {getattr(self, name)!r}")
        unknown = set(self.tasks) - set(self.all_tasks)
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {self.all_tasks}, got {self.tasks}")

    def validate_ranges(self):
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.label_min < self.label_max:
            raise ValueError(f"label_min must be below label_max, got {self.label_min} and {self.label_max}")
        if not -1.0 <= self.cosine_margin <= 1.0:
            raise ValueError(f"cosine_margin must be in [-1, 1], got {self.cosine_margin}")
        if self.dynamic_loss_exponent < 0:
            raise ValueError(f"dynamic_loss_exponent must be >= 0, got {self.dynamic_loss_exponent}")


__all__ = ["AFFECTNET_CLASS_NAMES", "FUSIONS", "IMAGE_SIZE", "MTCLARConfig", "RESIZE_SIZE"]
