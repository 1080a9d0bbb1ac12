// hwotp handwriting pad: one box per digit, pen / touch / mouse through Pointer Events.
//
// Each box records strokes as the gateway takes them (hwotp.v1.Handwriting):
// points {x, y, t_ms, pressure, azimuth, altitude} in the box's own pixels (y down),
// t_ms from the box's first point, pressure in [0, 1], and a pen's orientation in
// radians (Pointer Events' azimuthAngle, altitudeAngle); 0 where the device has none.
// No build step: `import { HandwritingPad } from "/static/pad.js"`.

export const MAX_POINTS = 4096; // per box, as the gateway allows

export class HandwritingPad {
  // signatures: boxes after the digits, twice as wide, for the user's signature
  constructor(container, { boxes, size = 280, labels = [], signatures = 0 }) {
    this.container = container;
    this.size = size;
    this.boxes = [];
    container.classList.add("hwotp-pad");
    for (let i = 0; i < boxes; i++) this.boxes.push(this._box(i, labels[i]));
    for (let i = 0; i < signatures; i++) {
      this.boxes.push(this._box(boxes + i, signatures > 1 ? `Signature ${i + 1}` : "Your signature", 2));
    }
  }

  _box(index, label, widths = 1) {
    const box = { strokes: [], start: null, canvas: document.createElement("canvas"), active: null, cursor: null };
    const wrap = document.createElement("div");
    wrap.className = "hwotp-box";
    if (label !== undefined) {
      const caption = document.createElement("div");
      caption.className = "hwotp-label";
      if (label instanceof HTMLElement) caption.appendChild(label); else caption.textContent = label;
      wrap.appendChild(caption);
    }
    box.canvas.width = this.size * widths;
    box.canvas.height = this.size;
    if (widths > 1) box.canvas.classList.add("hwotp-signature");
    box.canvas.setAttribute("aria-label", `box ${index + 1}`);
    box.canvas.dataset.box = String(index);
    wrap.appendChild(box.canvas);
    const tools = document.createElement("div");
    tools.className = "hwotp-tools";
    for (const [text, action] of [["Undo", () => this.undo(index)], ["Clear", () => this.clear(index)]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.addEventListener("click", action);
      tools.appendChild(button);
    }
    wrap.appendChild(tools);
    this.container.appendChild(wrap);
    this._listen(box);
    return box;
  }

  _point(box, event) {
    const rect = box.canvas.getBoundingClientRect();
    const scale = box.canvas.width / rect.width;
    if (box.start === null) box.start = event.timeStamp;
    const pen = event.pointerType === "pen";
    return {
      x: (event.clientX - rect.left) * scale,
      y: (event.clientY - rect.top) * scale,
      t_ms: Math.max(0, event.timeStamp - box.start),
      pressure: pen ? Math.min(1, Math.max(0, event.pressure)) : 0,
      azimuth: pen ? Math.min(2 * Math.PI, Math.max(0, event.azimuthAngle || 0)) : 0,
      altitude: pen ? Math.min(Math.PI / 2, Math.max(0, event.altitudeAngle || 0)) : 0,
    };
  }

  _count(box) {
    return box.strokes.reduce((n, stroke) => n + stroke.length, 0);
  }

  _listen(box) {
    const canvas = box.canvas;
    canvas.style.touchAction = "none"; // the finger writes; it does not scroll the page
    canvas.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      try {
        canvas.setPointerCapture(event.pointerId);
      } catch {
        // a synthetic or already-lifted pointer cannot be captured; the stroke is recorded all the same
      }
      box.active = [this._point(box, event)];
      box.strokes.push(box.active);
      this._draw(box);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!box.active) return;
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      for (const each of events.length ? events : [event]) {
        if (this._count(box) < MAX_POINTS) box.active.push(this._point(box, each));
      }
      this._draw(box);
    });
    const end = () => { box.active = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  _draw(box) {
    const context = box.canvas.getContext("2d");
    context.clearRect(0, 0, box.canvas.width, box.canvas.height);
    context.lineWidth = Math.max(2, this.size / 40);
    context.lineCap = context.lineJoin = "round";
    context.strokeStyle = "#1a237e";
    for (const stroke of box.strokes) {
      context.beginPath();
      stroke.forEach((p, i) => (i ? context.lineTo(p.x, p.y) : context.moveTo(p.x, p.y)));
      if (stroke.length === 1) context.lineTo(stroke[0].x + 0.1, stroke[0].y);
      context.stroke();
    }
    if (box.cursor) {
      // where the fingertip is when writing in the air: filled while the pen is down
      context.beginPath();
      context.arc(box.cursor.x, box.cursor.y, this.size / 40, 0, 2 * Math.PI);
      context.fillStyle = context.strokeStyle = box.cursor.down ? "#1a237e" : "#ef6c00";
      if (box.cursor.down) context.fill(); else context.stroke();
    }
  }

  // Strokes written another way (in the air, web/air.js) into box `index`, with the pen's cursor.
  write(index, strokes, cursor = null) {
    const box = this.boxes[index];
    box.strokes = strokes;
    box.cursor = cursor;
    this._draw(box);
  }

  undo(index) {
    this.boxes[index].strokes.pop();
    this._draw(this.boxes[index]);
  }

  clear(index) {
    const box = this.boxes[index];
    box.strokes = [];
    box.start = null;
    this._draw(box);
  }

  empty() {
    return this.boxes.map((box, i) => (box.strokes.length ? -1 : i)).filter((i) => i >= 0);
  }

  // The boxes as the gateway takes them: [{strokes: [{points: [{x, y, t_ms, pressure}]}]}].
  handwriting() {
    return this.boxes.map((box) => ({ strokes: box.strokes.map((points) => ({ points })) }));
  }

  // Each box as a PNG too (base64), for relying parties that send images.
  pngs() {
    return this.boxes.map((box) => box.canvas.toDataURL("image/png").split(",")[1]);
  }
}

// Seconds left until `expiresAtMs`, shown in `element` every second; `onExpire` once at 0.
export function countdown(element, expiresAtMs, onExpire) {
  const tick = () => {
    const left = Math.max(0, Math.ceil((expiresAtMs - Date.now()) / 1000));
    element.textContent = left > 0 ? `${left} s left` : "time is up";
    element.dataset.left = String(left);
    if (left === 0) {
      clearInterval(timer);
      onExpire?.();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}

// Enrolment: one box at a time through `digits` x `perDigit` samples, with progress and redo.
export class EnrolmentWalk {
  constructor(container, progress, { perDigit = 3, size = 280 } = {}) {
    this.samples = [];
    this.plan = [];
    for (let digit = 0; digit <= 9; digit++) for (let n = 0; n < perDigit; n++) this.plan.push(digit);
    this.container = container;
    this.progress = progress;
    this.size = size;
    this.show();
  }

  get done() {
    return this.samples.length === this.plan.length;
  }

  show() {
    this.container.innerHTML = "";
    if (this.done) {
      this.progress.textContent = `All ${this.plan.length} samples written.`;
      return;
    }
    const digit = this.plan[this.samples.length];
    this.pad = new HandwritingPad(this.container, { boxes: 1, size: this.size, labels: [`Write the digit ${digit}`] });
    this.progress.textContent = `Sample ${this.samples.length + 1} of ${this.plan.length}`;
  }

  // Keep what is in the box and move on; false when the box is empty.
  next() {
    if (this.pad.empty().length) return false;
    this.samples.push({ digit: this.plan[this.samples.length], handwriting: this.pad.handwriting()[0] });
    this.show();
    return true;
  }

  redo() {
    if (this.samples.length) this.samples.pop();
    this.show();
  }
}
