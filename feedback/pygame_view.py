"""Draw a :class:`~feedback.scene.Scene` with pygame; no logic, no events, no clock.

:func:`draw_scene` paints one frame onto any surface (the window, or a plain
``pygame.Surface`` in tests).  A :class:`SceneRenderer` keeps what is costly to rebuild
every frame: fonts, rendered strings, the background gradient, the soft light sprite and the
translucent panel.  The caller owns ``pygame.init``, events and ``display.flip``.

Soft light is one precomputed radial sprite (grey, brightest in the middle), scaled to the
size needed, tinted by a multiply fill and added onto the frame; on the dark background this
gives the glow around the breathing shape and the faint ambient lights at little cost.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pygame

from .scene import OVERLAY_WIDTH, OverlayRow, Palette, RGB, Scene, mix_rgb

__all__ = ["SceneRenderer", "draw_scene"]

logger = logging.getLogger(__name__)

GLOW_SCALE = 1.9  # glow radius / shape radius
SPRITE_SIZE = 512
TEXT_CACHE_SIZE = 512

_aacircle = getattr(pygame.draw, "aacircle", None)  # pygame-ce >= 2.5


def _radial_sprite(n: int, power: float) -> pygame.Surface:
    """Grey disc sprite, intensity ``(1 - d**2) ** power`` of the distance ``d`` 0..1 to its centre."""
    c = (n - 1) / 2.0
    y, x = np.mgrid[0:n, 0:n]
    d2 = ((x - c) ** 2 + (y - c) ** 2) / (n / 2.0) ** 2
    intensity = np.clip(1.0 - d2, 0.0, 1.0) ** power
    grey = np.round(intensity * 255.0).astype(np.uint8)
    return pygame.surfarray.make_surface(np.repeat(grey[:, :, np.newaxis], 3, axis=2))


def _circle(
    surface: pygame.Surface, color: RGB, center: tuple[float, float], radius: float, width: int = 0
) -> None:
    if radius < 1:
        return
    if _aacircle is not None:
        _aacircle(surface, color, center, radius, width)
    else:  # pragma: no cover - older pygame-ce
        pygame.draw.circle(surface, color, center, radius, width)


class SceneRenderer:
    """Draws scenes, caching fonts, strings and sprites between frames.

    Notes
    -----
    Needs ``pygame.font`` (initialised on first use).  Caches are keyed by surface size and
    colours, so a window resize or a palette change simply builds new entries.
    """

    def __init__(self) -> None:
        self._fonts: dict[int, pygame.font.Font] = {}
        self._text: OrderedDict[tuple[str, int, RGB], pygame.Surface] = OrderedDict()
        self._bg_key: tuple[object, ...] | None = None
        self._bg: pygame.Surface | None = None
        self._sprite_soft: pygame.Surface | None = None
        self._sprite_core: pygame.Surface | None = None
        self._ambient: OrderedDict[tuple[int, RGB], pygame.Surface] = OrderedDict()
        self._panel: OrderedDict[tuple[int, int, RGB, int], pygame.Surface] = OrderedDict()
        self._layer: pygame.Surface | None = None  # background + ambient lights
        self._layer_key: tuple[object, ...] | None = None
        self._scratch: pygame.Surface | None = None  # reused for scaled lights (no allocation per frame)
        self._progress_key: tuple[object, ...] | None = None
        self._progress: pygame.Surface | None = None
        self._overlay_key: tuple[object, ...] | None = None
        self._overlay: pygame.Surface | None = None

    # ---------------------------------------------------------------------------------- caches
    def font(self, size: int) -> pygame.font.Font:
        """The default pygame font at ``size`` pixels (cached)."""
        size = max(int(size), 6)
        f = self._fonts.get(size)
        if f is None:
            if not pygame.font.get_init():
                pygame.font.init()
            f = pygame.font.Font(None, size)
            self._fonts[size] = f
        return f

    def text(self, text: str, size: int, color: RGB) -> pygame.Surface:
        """Rendered anti-aliased string (cached; do not draw onto the result)."""
        key = (text, max(int(size), 6), color)
        surf = self._text.get(key)
        if surf is None:
            surf = self.font(key[1]).render(text, True, color)
            self._text[key] = surf
            if len(self._text) > TEXT_CACHE_SIZE:
                self._text.popitem(last=False)
        else:
            self._text.move_to_end(key)
        return surf

    def _sprites(self) -> tuple[pygame.Surface, pygame.Surface]:
        if self._sprite_soft is None or self._sprite_core is None:
            self._sprite_soft = _radial_sprite(SPRITE_SIZE, 3.0)
            self._sprite_core = _radial_sprite(SPRITE_SIZE, 1.2)
        return self._sprite_soft, self._sprite_core

    def _background(self, size: tuple[int, int], top: RGB, bottom: RGB) -> pygame.Surface:
        key = (size, top, bottom)
        if self._bg is None or self._bg_key != key:
            w, h = size
            k = np.linspace(0.0, 1.0, max(h, 1))[:, np.newaxis]
            col = np.round(np.array(top) * (1 - k) + np.array(bottom) * k).astype(np.uint8)
            column = pygame.surfarray.make_surface(col[np.newaxis, :, :])
            self._bg = pygame.transform.scale(column, (w, h))
            self._bg_key = key
        return self._bg

    def _ambient_sprite(self, diameter: int, color: RGB) -> pygame.Surface:
        key = (diameter, color)
        surf = self._ambient.get(key)
        if surf is None:
            soft, _ = self._sprites()
            surf = pygame.transform.smoothscale(soft, (diameter, diameter))
            surf.fill(color, special_flags=pygame.BLEND_RGB_MULT)
            self._ambient[key] = surf
            if len(self._ambient) > 6:
                self._ambient.popitem(last=False)
        return surf

    def _panel_surface(self, w: int, h: int, color: RGB, alpha: int, radius: int) -> pygame.Surface:
        key = (w, h, color, alpha)
        surf = self._panel.get(key)
        if surf is None:
            surf = pygame.Surface((w, h), pygame.SRCALPHA)
            pygame.draw.rect(surf, (*color, alpha), surf.get_rect(), border_radius=radius)
            self._panel[key] = surf
            if len(self._panel) > 6:
                self._panel.popitem(last=False)
        return surf

    # ---------------------------------------------------------------------------------- drawing
    def _light(self, surface: pygame.Surface, sprite: pygame.Surface, center: tuple[float, float],
               radius: float, color: RGB) -> None:
        """Add a scaled, tinted copy of ``sprite`` centred on ``center`` (scaled into scratch memory)."""
        d = int(round(2 * radius))
        if d < 2 or color == (0, 0, 0):
            return
        if self._scratch is None or self._scratch.get_width() < d:
            self._scratch = pygame.Surface((d + 64, d + 64))
        light = self._scratch.subsurface((0, 0, d, d))
        pygame.transform.scale(sprite, (d, d), light)
        light.fill(color, special_flags=pygame.BLEND_RGB_MULT)
        pos = (round(center[0] - d / 2), round(center[1] - d / 2))
        surface.blit(light, pos, special_flags=pygame.BLEND_RGB_ADD)

    def _background_layer(self, size: tuple[int, int], scene: Scene) -> pygame.Surface:
        """Gradient plus ambient lights, rebuilt only when a light has moved by a pixel or colours changed."""
        w, h = size
        u = min(w, h)
        blobs = tuple(
            (round(b.x * w), round(b.y * h), max(int(round(2 * b.radius * u)), 2), b.color)
            for b in scene.ambient
        )
        key = (size, scene.background_top, scene.background_bottom, blobs)
        if self._layer is None or self._layer_key != key:
            if self._layer is None or self._layer.get_size() != size:
                self._layer = pygame.Surface(size)
            self._layer.blit(self._background(size, scene.background_top, scene.background_bottom), (0, 0))
            for x, y, d, color in blobs:
                sprite = self._ambient_sprite(d, color)
                self._layer.blit(sprite, (x - d // 2, y - d // 2), special_flags=pygame.BLEND_RGB_ADD)
            self._layer_key = key
        return self._layer

    def _blit_center(self, surface: pygame.Surface, img: pygame.Surface, x: float, y: float,
                     alpha: float = 1.0) -> pygame.Rect:
        rect = img.get_rect(center=(round(x), round(y)))
        if alpha < 0.999:
            img.set_alpha(int(round(255 * max(alpha, 0.0))))
            surface.blit(img, rect)
            img.set_alpha(255)  # not None: that would switch off the per-pixel alpha of cached text
        else:
            surface.blit(img, rect)
        return rect

    def draw(self, surface: pygame.Surface, scene: Scene) -> None:
        """Paint ``scene`` onto ``surface`` (the whole surface is overwritten)."""
        w, h = surface.get_size()
        u = min(w, h)
        pal = scene.palette
        surface.blit(self._background_layer((w, h), scene), (0, 0))

        cx, cy = scene.center[0] * w, scene.center[1] * h
        r = scene.shape_radius * u
        soft, core = self._sprites()
        for gr in scene.guide_radii:
            ring = mix_rgb(scene.background_bottom, pal.text_dim, 0.28)
            _circle(surface, ring, (cx, cy), gr * u, max(1, u // 320))
        glow = tuple(min(int(c * scene.glow_strength * 0.55), 255) for c in scene.glow_color)
        self._light(surface, soft, (cx, cy), r * GLOW_SCALE, glow)  # type: ignore[arg-type]
        sc = scene.shape_color
        body = (int(sc[0] * 0.78), int(sc[1] * 0.78), int(sc[2] * 0.78))
        _circle(surface, body, (cx, cy), r)  # filled and anti-aliased at sub-pixel radius: grows smoothly
        inner = tuple(int(c * 0.32) for c in scene.shape_color)
        self._light(surface, core, (cx, cy - 0.08 * r), r * 0.92, inner)  # type: ignore[arg-type]

        self._draw_progress(surface, scene, cx, u)
        if scene.caption:
            img = self.text(scene.caption, int(0.085 * u), pal.text)
            self._blit_center(surface, img, cx, 0.835 * h, scene.caption_alpha)
        if scene.subcaption:
            img = self.text(scene.subcaption, int(0.04 * u), pal.text_dim)
            self._blit_center(surface, img, cx, 0.905 * h)
        self._draw_marks(surface, scene, u)
        if scene.overlay_visible:
            self._draw_overlay(surface, scene, u)
        if scene.dialog:
            self._draw_dialog(surface, scene, u)

    def _draw_progress(self, surface: pygame.Surface, scene: Scene, cx: float, u: int) -> None:
        """Stage dots joined by a line, filled up to the current stage, and the stage label (cached)."""
        prog, pal = scene.progress, scene.palette
        n = len(prog.labels)
        if n < 2 or prog.index < 0:
            return
        dim = mix_rgb(scene.background_top, pal.text_dim, 0.45)
        key = (u, n, prog.index, round(prog.within, 3), prog.label, pal.accent, pal.text_dim, dim)
        if self._progress is None or self._progress_key != key:
            step = 0.06 * u
            pad = int(0.02 * u) + 2
            label = self.text(prog.label, int(0.034 * u), pal.text_dim)
            width = int(max(step * (n - 1) + 2 * pad, label.get_width() + 4))
            height = int(2 * pad + 0.025 * u + label.get_height())
            surf = pygame.Surface((width, height), pygame.SRCALPHA)
            x0, y = (width - step * (n - 1)) / 2, pad
            lw = max(1, u // 400)
            r_dot, r_now = 0.008 * u, 0.013 * u
            for i in range(n - 1):  # segments between dots, so hollow dots stay hollow
                a, b = x0 + step * i + r_dot, x0 + step * (i + 1) - r_dot
                pygame.draw.line(surf, dim, (a, y), (b, y), lw)
            done_x = x0 + step * (prog.index + prog.within)
            if done_x > x0:
                pygame.draw.line(surf, pal.accent, (x0, y), (done_x, y), lw + 1)
            for i in range(n):
                x = x0 + step * i
                if i < prog.index:
                    _circle(surf, pal.accent, (x, y), r_dot)
                elif i == prog.index:
                    _circle(surf, pal.accent, (x, y), r_now)
                else:
                    _circle(surf, dim, (x, y), r_dot, max(1, u // 500))
            surf.blit(label, label.get_rect(midtop=(width // 2, int(y + r_now + 0.015 * u))))
            self._progress, self._progress_key = surf, key
        top = round(0.06 * u - 0.02 * u - 2)
        surface.blit(self._progress, self._progress.get_rect(midtop=(round(cx), top)))

    def _pill(self, surface: pygame.Surface, text: str, color: RGB, text_color: RGB, right: float,
              top: float, size: int) -> pygame.Rect:
        img = self.text(text, size, text_color)
        pad_x, pad_y = size * 0.6, size * 0.3
        rect = pygame.Rect(0, 0, int(img.get_width() + 2 * pad_x), int(img.get_height() + 2 * pad_y))
        rect.topright = (int(right), int(top))
        pygame.draw.rect(surface, color, rect, border_radius=rect.height // 2)
        surface.blit(img, img.get_rect(center=rect.center))
        return rect

    def _draw_marks(self, surface: pygame.Surface, scene: Scene, u: int) -> None:
        w = surface.get_width()
        top = 0.03 * u
        size = int(0.032 * u)
        for text, color in scene.status_marks:
            if color == scene.palette.text_dim:  # quiet mark: text only
                img = self.text(text, size, color)
                rect = img.get_rect(topright=(int(w - 0.03 * u), int(top + size * 0.3)))
                surface.blit(img, rect)
                top = rect.bottom + 0.02 * u
            else:
                rect = self._pill(surface, text, color, scene.palette.ready_text, w - 0.03 * u, top, size)
                top = rect.bottom + 0.015 * u

    def _wrap(self, text: str, size: int, width: float, max_lines: int) -> list[str]:
        font = self.font(size)
        lines: list[str] = []
        line = ""
        for word in text.split():
            cand = f"{line} {word}".strip()
            if font.size(cand)[0] <= width or not line:
                line = cand
            else:
                lines.append(line)
                line = word
                if len(lines) == max_lines:
                    break
        if line and len(lines) < max_lines:
            lines.append(line)
        if len(lines) == max_lines and font.size(lines[-1])[0] > width:
            while lines[-1] and font.size(lines[-1] + "...")[0] > width:
                lines[-1] = lines[-1][:-1]
            lines[-1] += "..."
        return lines

    def _row_color(self, row: OverlayRow, pal: Palette) -> RGB:
        return {"ok": pal.ok, "warn": pal.warn, "bad": pal.bad}.get(row.level, pal.text)

    def _draw_overlay(self, surface: pygame.Surface, scene: Scene, u: int) -> None:
        """Blit the clinician panel, repainted only when its content changes (about twice a second)."""
        w, h = surface.get_size()
        px, py = int(0.02 * w), int(0.03 * h)
        pw, ph = int(OVERLAY_WIDTH * w - px), int(h - 2 * py)
        key = (pw, ph, u, scene.palette.name, scene.ready, scene.alert, scene.overlay_rows,
               scene.overlay_reason, scene.overlay_alerts, scene.overlay_footer)
        if self._overlay is None or self._overlay_key != key:
            panel = pygame.Surface((pw, ph), pygame.SRCALPHA)
            self._paint_overlay(panel, scene, u)
            self._overlay, self._overlay_key = panel, key
        surface.blit(self._overlay, (px, py))

    def _paint_overlay(self, panel: pygame.Surface, scene: Scene, u: int) -> None:
        pal = scene.palette
        pw, ph = panel.get_size()
        pygame.draw.rect(panel, (*pal.panel, 226), panel.get_rect(), border_radius=int(0.02 * u))
        surface = panel
        px, py = 0, 0
        pad = 0.028 * u
        x, right = px + pad, px + pw - pad
        y = py + pad
        title = self.text("Clinician view", int(0.032 * u), pal.text_dim)
        surface.blit(title, (x, y))
        y += title.get_height() + 0.02 * u

        banner_h = int(0.095 * u)
        if scene.ready or scene.alert:
            color, text_color = (pal.ready, pal.ready_text) if scene.ready else (pal.alert, pal.ready_text)
            label = "READY FOR DOSING" if scene.ready else "ALERT"
            rect = pygame.Rect(int(x), int(y), int(right - x), banner_h)
            pygame.draw.rect(surface, color, rect, border_radius=int(0.012 * u))
            size = int(0.058 * u)
            img = self.text(label, size, text_color)
            while img.get_width() > rect.width - 0.03 * u and size > 10:
                size -= 2
                img = self.text(label, size, text_color)
            surface.blit(img, img.get_rect(center=rect.center))
            y = rect.bottom + 0.025 * u

        label_size, value_size, detail_size = int(0.03 * u), int(0.035 * u), int(0.026 * u)
        row_h = 0.045 * u
        value_x = x + 0.25 * u
        for row in scene.overlay_rows:
            lab = self.text(row.label, label_size, pal.text_dim)
            surface.blit(lab, lab.get_rect(midleft=(int(x), int(y + row_h / 2))))
            val = self.text(row.value, value_size, self._row_color(row, pal))
            surface.blit(val, val.get_rect(midleft=(int(value_x), int(y + row_h / 2))))
            if row.detail:
                det = self.text(row.detail, detail_size, pal.text_dim)
                surface.blit(det, det.get_rect(midright=(int(right), int(y + row_h / 2))))
            y += row_h

        small = int(0.027 * u)
        line_h = self.font(small).get_linesize()
        if scene.overlay_reason:
            y += 0.01 * u
            for line in self._wrap(scene.overlay_reason, small, right - x, 2):
                surface.blit(self.text(line, small, pal.text_dim), (x, y))
                y += line_h
        if scene.overlay_alerts:
            y += 0.012 * u
            surface.blit(self.text("Alerts", small, pal.text_dim), (x, y))
            y += line_h
            for text in scene.overlay_alerts:
                for line in self._wrap(text, small, right - x, 2):
                    surface.blit(self.text(line, small, pal.alert), (x, y))
                    y += line_h

        foot = int(0.025 * u)
        fy = py + ph - pad
        keys = ("Tab overlay   F full screen   Esc stop", "P pause   M mute   +/- volume")
        for line in (*keys, scene.overlay_footer):
            if not line:
                continue
            img = self.text(line, foot, pal.text_dim)
            fy -= img.get_height() + 0.006 * u
            if fy < y:
                break
            surface.blit(img, (x, fy))

    def _draw_dialog(self, surface: pygame.Surface, scene: Scene, u: int) -> None:
        w, h = surface.get_size()
        pal = scene.palette
        dw, dh = int(0.75 * u), int(0.26 * u)
        rect = pygame.Rect(0, 0, dw, dh)
        rect.center = (w // 2, h // 2)
        surface.blit(self._panel_surface(dw, dh, pal.panel, 240, int(0.025 * u)), rect)
        pygame.draw.rect(surface, pal.accent, rect, max(1, u // 320), border_radius=int(0.025 * u))
        title = self.text(scene.dialog, int(0.065 * u), pal.text)
        self._blit_center(surface, title, rect.centerx, rect.top + 0.36 * dh)
        hint = self.text(scene.dialog_hint, int(0.04 * u), pal.text_dim)
        self._blit_center(surface, hint, rect.centerx, rect.top + 0.72 * dh)


_default: SceneRenderer | None = None


def draw_scene(surface: pygame.Surface, scene: Scene, renderer: SceneRenderer | None = None) -> None:
    """Draw ``scene`` onto ``surface``.

    Parameters
    ----------
    surface : pygame.Surface
        Target (the display surface or an off-screen surface).
    scene : Scene
        What to draw (from :func:`feedback.scene.compose_scene`).
    renderer : SceneRenderer, optional
        Cache holder; a module-wide one is used when omitted.
    """
    global _default
    if renderer is None:
        if _default is None:
            _default = SceneRenderer()
        renderer = _default
    renderer.draw(surface, scene)
