// Writing in the air: hand landmarks, frame by frame, become the strokes of one box.
//
// No DOM and no camera here (web/air-camera.js feeds it): each frame brings the
// 21 landmarks of one hand (MediaPipe Hands: x and y in [0, 1] of the image, x
// to the right of the image, y down), or null when no hand is seen. The index
// fingertip is the pen. The pen touches the paper while the thumb pinches the
// index finger ("pinch"), or, in "dwell" mode, holding the fingertip still puts
// the pen down and holding it still again lifts it. A lost hand lifts the pen.
// The strokes come out as the pad records them (web/pad.js): points {x, y, t_ms,
// pressure} in the box's pixels, t_ms from the first point, pressure 0.

export const WRIST = 0, THUMB_TIP = 4, INDEX_TIP = 8, MIDDLE_BASE = 9;

const DEFAULTS = {
  size: 280, // the box's height in pixels
  width: null, // its width (a signature's box is wider), the height when null
  aspect: 4 / 3, // the camera image's width over its height
  mirror: true, // a selfie camera: the image is the writer's mirror
  region: 0.6, // height of the centred part of the image (a share of its height) that maps onto the box
  mode: "pinch",
  pinchOn: 0.35, // thumb-to-index distance over the hand's size that puts the pen down...
  pinchOff: 0.5, // ...and that lifts it again (apart, so that a trembling pinch does not break strokes)
  dwellMs: 700, // "dwell": how long the fingertip must hold still to put the pen down or lift it
  dwellRadius: 0.015, // what counts as still, a share of the image's height
  smoothing: 0.4, // weight of the previous position in the fingertip's moving average
};

function distance(a, b) {
  return Math.hypot(a.x - b.x, a.y - b.y);
}

export class AirPen {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.strokes = [];
    this.down = false;
    this.smoothed = null;
    this.start = null; // time of the first point
    this.still = null; // dwell: {at, since, armed}
  }

  // The image point (x across, y down, in units of the image's height) of a landmark.
  _image(landmark) {
    const x = this.options.mirror ? 1 - landmark.x : landmark.x;
    return { x: x * this.options.aspect, y: landmark.y };
  }

  // The box pixel of an image point: a centred part of the image, of the box's proportions, spans the box.
  _box(point) {
    const { size, aspect, region } = this.options;
    const width = this.options.width || size;
    const across = Math.min(aspect, (region * width) / size);
    return { x: ((point.x - (aspect - across) / 2) / across) * width, y: ((point.y - (1 - region) / 2) / region) * size };
  }

  _pinched(hand) {
    const size = distance(this._image(hand[WRIST]), this._image(hand[MIDDLE_BASE]));
    if (size <= 0) return this.down;
    const ratio = distance(this._image(hand[THUMB_TIP]), this._image(hand[INDEX_TIP])) / size;
    return this.down ? ratio < this.options.pinchOff : ratio < this.options.pinchOn;
  }

  _dwelled(tip, tMs) {
    const { dwellMs, dwellRadius } = this.options;
    if (!this.still || distance(tip, this.still.at) > dwellRadius) {
      // moving: the next stillness may toggle the pen again
      this.still = { at: tip, since: tMs, armed: true };
      return this.down;
    }
    if (this.still.armed && tMs - this.still.since >= dwellMs) {
      this.still.armed = false;
      return !this.down;
    }
    return this.down;
  }

  // One camera frame: the hand's landmarks (or null) at time tMs. Returns the pen's state and box point.
  feed(hand, tMs) {
    if (!hand) {
      this.down = false;
      this.smoothed = null;
      this.still = null;
      return { down: false, point: null };
    }
    const raw = this._image(hand[INDEX_TIP]);
    const a = this.options.smoothing;
    this.smoothed = this.smoothed ? { x: a * this.smoothed.x + (1 - a) * raw.x, y: a * this.smoothed.y + (1 - a) * raw.y } : raw;
    const down = this.options.mode === "dwell" ? this._dwelled(raw, tMs) : this._pinched(hand);
    const point = this._box(this.smoothed);
    if (down) {
      if (this.start === null) this.start = tMs;
      if (!this.down) this.strokes.push([]);
      this.strokes[this.strokes.length - 1].push({ x: point.x, y: point.y, t_ms: Math.max(0, tMs - this.start), pressure: 0 });
    }
    this.down = down;
    return { down, point };
  }

  clear() {
    this.strokes = [];
    this.down = false;
    this.start = null;
    this.still = null;
  }
}

// Feed a whole recorded sequence of frames [{hand, t_ms}] and return the strokes (for tests and replays).
export function strokesOf(frames, options = {}) {
  const pen = new AirPen(options);
  for (const frame of frames) pen.feed(frame.hand, frame.t_ms);
  return pen.strokes;
}
