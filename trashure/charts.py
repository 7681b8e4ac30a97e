"""Plotly figures for the dashboard (pure functions of data; no Streamlit here)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

PALETTE = {"can": "#c62828", "glass_bottle": "#2e7d32", "other": "#8d6e63", "plastic_bottle": "#1565c0"}


def class_colour(name: str) -> str:
    return PALETTE.get(name, "#607d8b")


def class_counts(counts: dict[str, int]) -> go.Figure:
    names = list(counts)
    fig = go.Figure(go.Bar(x=names, y=[counts[n] for n in names], marker_color=[class_colour(n) for n in names],
                           text=[counts[n] for n in names], textposition="outside"))
    mean = np.mean(list(counts.values())) if counts else 0
    fig.add_hline(y=mean, line_dash="dot", annotation_text=f"mean {mean:.0f}", line_color="#888")
    fig.update_layout(title="Photos per class", yaxis_title="photos", margin=dict(t=50, b=10), height=340)
    return fig


def image_sizes(sizes: Sequence[dict[str, int]]) -> go.Figure:
    if not sizes:
        return go.Figure()
    w = np.array([s["width"] for s in sizes])
    h = np.array([s["height"] for s in sizes])
    n = np.array([s["count"] for s in sizes])
    fig = px.scatter(x=w, y=h, size=n, size_max=40, hover_data={"photos": n},
                     labels={"x": "width (px)", "y": "height (px)"}, title="Image sizes (bubble = photos)")
    fig.update_layout(height=340, margin=dict(t=50, b=10))
    return fig


def history_curves(history: Sequence[dict[str, float]], metric: str) -> go.Figure:
    """Train vs validation curve of 'accuracy' or 'loss' per epoch."""
    epochs = [int(h["epoch"]) for h in history]
    fig = go.Figure()
    fig.add_scatter(x=epochs, y=[h.get(metric) for h in history], mode="lines+markers", name=f"train {metric}")
    fig.add_scatter(x=epochs, y=[h.get(f"val_{metric}") for h in history], mode="lines+markers",
                    name=f"validation {metric}")
    fig.update_layout(title=metric.capitalize(), xaxis_title="epoch", height=320, margin=dict(t=50, b=10),
                      legend=dict(orientation="h", y=-0.25))
    if metric == "accuracy":
        fig.update_yaxes(tickformat=".0%")
    fine_tune = [int(h["epoch"]) for h in history if h.get("stage") == "fine-tune"]
    if fine_tune:
        fig.add_vline(x=fine_tune[0] - 0.5, line_dash="dot", line_color="grey",
                      annotation_text="fine-tuning", annotation_position="top right")
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence[str], normalise: bool = False) -> go.Figure:
    m = np.asarray(matrix, dtype=float)
    if normalise:
        rows = m.sum(axis=1, keepdims=True)
        m = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    text = [[f"{v:.0%}" if normalise else f"{int(v)}" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(z=m, x=list(classes), y=list(classes), text=text, texttemplate="%{text}",
                               colorscale="Greens", showscale=False))
    fig.update_layout(title="Confusion matrix" + (" (row-normalised)" if normalise else " (counts)"),
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      height=420, margin=dict(t=50, b=10))
    return fig


def probabilities(probs: dict[str, float], threshold: float | None = None) -> go.Figure:
    """Horizontal bars of every class's probability on a 0-100% axis, the threshold as a dotted line."""
    names = list(probs)
    fig = go.Figure(go.Bar(x=[probs[n] for n in names], y=names, orientation="h",
                           marker_color=[class_colour(n) for n in names],
                           text=[f"{probs[n]:.1%}" for n in names], textposition="outside", textangle=0,
                           cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dot", line_color="#888")
        fig.add_annotation(x=threshold, y=1, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"threshold {threshold:.0%}", font=dict(color="#666", size=12))
    fig.update_layout(xaxis=dict(range=[0, 1], tickformat=".0%", dtick=0.25, fixedrange=True),
                      yaxis=dict(autorange="reversed", fixedrange=True, ticklabelstandoff=6),
                      height=240, margin=dict(t=30, b=10, l=10, r=50), showlegend=False)
    return fig


def feature_map(points: dict[str, Sequence], colour: str, title: str) -> go.Figure:
    """The photos as points of a 2-D map of their features; hover shows the file; selectable."""
    import pandas as pd

    frame = pd.DataFrame(points)
    colours = PALETTE if colour == "class" else ({"right": "#2e7d32", "wrong": "#c62828"} if colour == "right/wrong"
                                                 else None)
    fig = px.scatter(frame, x="x", y="y", color=colour, hover_name="file", custom_data=["index"],
                     color_discrete_map=colours, title=title, render_mode="webgl")
    fig.update_traces(marker=dict(size=6, opacity=0.8))
    fig.update_layout(height=560, margin=dict(t=50, b=10), xaxis_title=None, yaxis_title=None,
                      legend=dict(orientation="h", y=-0.08), dragmode="lasso")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig
