"""The networks: of digit images ((batch, 1, 28, 28) float32, MNIST-normalised) and of pen paths
((batch, hwotp.trajectory.CHANNELS, POINTS))."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Recognizer(nn.Module):
    """The paper's CNN (four convolutions, 2x2 max pooling after every second,
    two fully connected layers, dropout) with batch norm added."""

    def __init__(self, width: int = 32, hidden: int = 256, dropout: float = 0.4):
        super().__init__()
        self.features = nn.Sequential(
            _conv(1, width), _conv(width, width), nn.MaxPool2d(2),
            _conv(width, 2 * width), _conv(2 * width, 2 * width), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class RecognizerEnsemble(nn.Module):
    """Several recognizers trained with different seeds; outputs the log of their mean
    probabilities, so that a softmax of the output is the ensemble's probability."""

    def __init__(self, members: int = 2):
        super().__init__()
        self.members = nn.ModuleList(Recognizer() for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([F.softmax(member(x), dim=1) for member in self.members]).mean(dim=0)
        return torch.log(probabilities.clamp_min(1e-12))


class Embedder(nn.Module):
    """One twin of the Siamese pair: a digit image -> an L2-normalised style embedding."""

    def __init__(self, width: int = 32, dim: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            _conv(1, width), _conv(width, width), nn.MaxPool2d(2),
            _conv(width, 2 * width), _conv(2 * width, 2 * width), nn.MaxPool2d(2),
            _conv(2 * width, 4 * width), _conv(4 * width, 4 * width),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width * 7 * 7, dim), nn.BatchNorm1d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(x)), dim=1)


class CosineMarginHead(nn.Module):
    """CosFace: logits s * (cos(theta) - m) for the true class, s * cos(theta) otherwise."""

    def __init__(self, dim: int, classes: int, scale: float = 30.0, margin: float = 0.35):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cosine = embedding @ F.normalize(self.weight, dim=1).T
        cosine = cosine - self.margin * F.one_hot(target, cosine.shape[1])
        return F.cross_entropy(self.scale * cosine, target)


def _conv1d(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(cout),
                         nn.ReLU(inplace=True))


class PathEmbedder(nn.Module):
    """The online twin: a pen path (batch, hwotp.trajectory.CHANNELS, POINTS) -> an
    L2-normalised style embedding. Points are evenly spaced along the path, so a
    position in the sequence is a place in the writing, and the head keeps it."""

    def __init__(self, channels: int = 8, points: int = 64, width: int = 96, dim: int = 128):
        super().__init__()
        self.dim = dim
        self.features = nn.Sequential(
            _conv1d(channels, width, 5), _conv1d(width, width, 5), nn.MaxPool1d(2),
            _conv1d(width, 2 * width, 3), _conv1d(2 * width, 2 * width, 3), nn.MaxPool1d(2),
            _conv1d(2 * width, 2 * width, 3),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(2 * width * (points // 4), dim),
                                  nn.BatchNorm1d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(x)), dim=1)


class RecurrentPathEmbedder(nn.Module):
    """A path embedder of another build: a bidirectional GRU over the path, pooled over its
    length. It sees where the writing goes next rather than where in the sequence a shape
    sits, so that its errors might differ from PathEmbedder's (an ensemble member for
    training.train_online --members; not deployed)."""

    def __init__(self, channels: int = 8, points: int = 64, width: int = 96, dim: int = 128):
        super().__init__()
        self.dim = dim
        self.stem = _conv1d(channels, 64, 5)
        self.gru = nn.GRU(64, width, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, dim), nn.BatchNorm1d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, _ = self.gru(self.stem(x).transpose(1, 2))
        return F.normalize(self.head(torch.cat([steps.mean(dim=1), steps.amax(dim=1)], dim=1)), dim=1)


PATH_EMBEDDERS = {"conv": PathEmbedder, "recurrent": RecurrentPathEmbedder}


class PathEmbedderEnsemble(nn.Module):
    """Path embedders (PATH_EMBEDDERS, one kind per member) trained with different seeds: their
    embeddings side by side, scaled so that the whole is unit length again; its cosine is then
    the mean of the members' cosines."""

    def __init__(self, kinds: tuple[str, ...] = ("conv", "conv"), **kwargs):
        super().__init__()
        self.members = nn.ModuleList(PATH_EMBEDDERS[kind](**kwargs) for kind in kinds)
        self.dim = sum(member.dim for member in self.members)

    @classmethod
    def from_state(cls, state: dict) -> "PathEmbedderEnsemble":
        """The ensemble whose members' kinds a saved state dict holds, with those weights."""
        count = 1 + max(int(key.split(".")[1]) for key in state)
        kinds = tuple("recurrent" if f"members.{i}.gru.weight_ih_l0" in state else "conv" for i in range(count))
        model = cls(kinds)
        model.load_state_dict(state)
        return model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member(x) for member in self.members], dim=1) / len(self.members) ** 0.5


class PathRecognizer(nn.Module):
    """The online recognizer: a pen path -> digit logits, on the path embedder's layers (the
    order and direction of the strokes tell apart digits whose pictures look alike)."""

    def __init__(self, channels: int = 8, points: int = 64, width: int = 96, hidden: int = 128):
        super().__init__()
        self.body = PathEmbedder(channels, points, width, hidden)
        self.classifier = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body.head(self.body.features(x)))
