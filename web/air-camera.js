// The camera side of writing in the air: MediaPipe Hands on the device's camera, its
// landmarks into an AirPen (web/air.js), the pen's strokes into a box of the pad.
//
// Video never leaves the device: frames go to the hand model in this page, and
// only the strokes it yields are sent, as the pad sends strokes written by touch.
// The model and its runtime are served by the page's own server under `base`
// (the pinned @mediapipe/hands package), never fetched from elsewhere.

import { AirPen } from "/static/air.js";

const STATES = {
  loading: "Starting the camera and the hand model...",
  "no-hand": "No hand seen: hold one hand up in front of the camera, palm towards it.",
  hand: "Hand seen: pinch thumb and index finger to write, open them to lift the pen.",
  "hand-dwell": "Hand seen: hold your fingertip still to put the pen down, and again to lift it.",
  writing: "Writing...",
  error: "Writing in the air is not available here",
};

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${src} could not be loaded`));
    document.head.appendChild(script);
  });
}

export class AirWriter {
  // pad: a HandwritingPad; status: an element that says what the camera sees (data-state, data-frames)
  constructor(pad, video, status, { base = "/static/mediapipe/", mode = "pinch" } = {}) {
    this.pad = pad;
    this.video = video;
    this.status = status;
    this.base = base;
    this.mode = mode;
    this.index = 0;
    this.frames = 0;
    this.running = false;
    this.pen = this._pen();
  }

  _pen() {
    const canvas = this.pad.boxes[this.index].canvas;
    return new AirPen({ size: canvas.height, width: canvas.width, mode: this.mode,
                        aspect: (this.video.videoWidth || 4) / (this.video.videoHeight || 3) });
  }

  _say(state, detail = "") {
    this.status.dataset.state = state;
    this.status.dataset.frames = String(this.frames);
    this.status.textContent = (STATES[state] || state) + (detail ? `: ${detail}` : "");
  }

  // Write into box `index` of `pad` from now on (what it holds is written over).
  attach(pad, index = 0) {
    const before = this.pad.boxes[this.index];
    if (before) {
      this.pad.write(this.index, before.strokes, null);
      before.canvas.classList.remove("hwotp-air-target");
    }
    this.pad = pad;
    this.index = index;
    this.pen = this._pen();
    pad.boxes[index].canvas.classList.add("hwotp-air-target");
  }

  async start() {
    this.running = true;
    this._say("loading");
    try {
      if (!window.Hands) await loadScript(`${this.base}hands.js`);
      this.video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      await this.video.play();
      this.pen = this._pen();
      this.hands = new window.Hands({ locateFile: (file) => `${this.base}${file}` });
      this.hands.setOptions({ maxNumHands: 1, modelComplexity: 0, minDetectionConfidence: 0.6, minTrackingConfidence: 0.5 });
      this.hands.onResults((results) => this._results(results));
      await this.hands.initialize();
    } catch (error) {
      this._say("error", error.message || String(error));
      this.stop();
      return;
    }
    this._loop();
  }

  async _loop() {
    while (this.running) {
      const started = performance.now();
      try {
        await this.hands.send({ image: this.video });
      } catch (error) {
        this._say("error", error.message || String(error));
        this.stop();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 33 - (performance.now() - started))));
    }
  }

  _results(results) {
    this.frames += 1;
    const hand = (results.multiHandLandmarks || [])[0] || null;
    const { down, point } = this.pen.feed(hand, performance.now());
    if (this.pen.strokes.length || point) {
      this.pad.write(this.index, this.pen.strokes, point ? { ...point, down } : null);
    }
    this._say(!hand ? "no-hand" : down ? "writing" : this.mode === "dwell" ? "hand-dwell" : "hand");
  }

  stop() {
    this.running = false;
    this.pad.boxes[this.index]?.canvas.classList.remove("hwotp-air-target");
    for (const track of this.video.srcObject?.getTracks?.() || []) track.stop();
    this.video.srcObject = null;
    this.hands?.close?.();
  }
}

// A "Write in the air" switch, a "Next box" button, the pinch/dwell choice, the status line and the
// camera preview, in `element`; currentPad() names the pad to write into (it may change, as in enrolment).
export function airControls(element, currentPad) {
  element.classList.add("hwotp-air");
  element.innerHTML = `<button type="button" data-air="switch">Write in the air</button>
<button type="button" data-air="next" hidden>Next box</button>
<label><input type="checkbox" data-air="dwell"> hold still instead of pinching</label>
<div data-air="status" role="status"></div>
<video data-air="camera" playsinline muted hidden></video>`;
  const part = (name) => element.querySelector(`[data-air="${name}"]`);
  const [toggle, next, dwell, status, video] = ["switch", "next", "dwell", "status", "camera"].map(part);
  let writer = null;
  toggle.onclick = async () => {
    if (writer) {
      writer.stop();
      writer = window.hwotpAir = null;
      toggle.textContent = "Write in the air";
      video.hidden = next.hidden = true;
      status.textContent = "";
      return;
    }
    const pad = currentPad();
    writer = window.hwotpAir = new AirWriter(pad, video, status, { mode: dwell.checked ? "dwell" : "pinch" });
    writer.attach(pad, Math.max(0, pad.empty()[0] ?? 0));
    toggle.textContent = "Stop writing in the air";
    video.hidden = next.hidden = false;
    await writer.start();
  };
  next.onclick = () => {
    if (!writer) return;
    const pad = currentPad();
    writer.attach(pad, pad === writer.pad ? Math.min(writer.index + 1, pad.boxes.length - 1) : 0);
  };
  return { follow: (pad) => writer?.attach(pad, 0) };
}
