// Runs a Trashure TF.js graph model in Node.js with the official @tensorflow/tfjs runtime and its WASM
// backend, the way the Trashure web backend uses it.
//
//   node predict.mjs MODEL_DIR --photos a.jpg b.jpg ...   decode, resize to the model's size (metadata.json:
//                                                         448x448 or 224x224) bilinear, /255 (web contract)
//   node predict.mjs MODEL_DIR --tensor batch.f32 N       a raw float32 NHWC batch, fed as is (parity checks)
//   TRASHURE_DUMP_INPUT=FILE                               also write the model inputs (float32 NHWC) to FILE
//
// Prints one JSON object: {"backend", "probabilities": [[...], ...], "ms_per_image"}.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import jpeg from "jpeg-js";

const require = createRequire(import.meta.url);

// tf.loadGraphModel reads URLs; in Node without tfjs-node we hand it the files through an IOHandler.
function fileHandler(dir) {
  return {
    async load() {
      const model = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
      const specs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: model.modelTopology,
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
        signature: model.signature,
        userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

// The photo size the model takes, from the export's metadata.json (224 for exports that predate it).
function inputSize(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, "metadata.json"), "utf8")).input.shape[1] || 224;
  } catch {
    return 224;
  }
}

// The web backend's preprocessing: decode to RGB, resize to the model's size bilinear, divide by 255, batch axis.
function photoTensor(file, size) {
  const decoded = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false });
  return tf.tidy(() => {
    const rgb = tf.tensor3d(decoded.data, [decoded.height, decoded.width, 3], "int32");
    return tf.image.resizeBilinear(rgb.toFloat(), [size, size]).div(255).expandDims(0);
  });
}

async function main() {
  const [dir, mode, ...rest] = process.argv.slice(2);
  setWasmPaths(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm")) + "/");
  await tf.setBackend("wasm");
  await tf.ready();
  const model = await tf.loadGraphModel(fileHandler(dir));
  const size = inputSize(dir);
  let inputs;
  if (mode === "--photos") {
    inputs = rest.map((file) => photoTensor(file, size));
  } else if (mode === "--tensor") {
    const [file, n] = rest;
    const buf = fs.readFileSync(file);
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const per = size * size * 3;
    inputs = Array.from({ length: Number(n) }, (_, i) =>
      tf.tensor4d(all.slice(i * per, (i + 1) * per), [1, size, size, 3]));
  } else {
    throw new Error("usage: predict.mjs MODEL_DIR --photos FILE... | --tensor FILE N");
  }
  if (process.env.TRASHURE_DUMP_INPUT) {
    const chunks = await Promise.all(inputs.map(async (x) => Buffer.from((await x.data()).buffer)));
    fs.writeFileSync(process.env.TRASHURE_DUMP_INPUT, Buffer.concat(chunks));
  }
  model.predict(inputs[0]).dispose(); // warm-up
  const probabilities = [];
  const start = performance.now();
  for (const x of inputs) {
    const y = model.predict(x);
    probabilities.push(Array.from(await y.data()));
    y.dispose();
  }
  const ms = (performance.now() - start) / inputs.length;
  process.stdout.write(JSON.stringify({ backend: tf.getBackend(), probabilities, ms_per_image: ms }) + "\n");
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
