// A map tile server for the browser tests, on 127.0.0.1: `GET /{z}/{x}/{y}.png` answers a 256×256 PNG (a pale
// square with a darker border, so screenshots show the tile grid); anything else is a 404. It records the
// requests, and their Referer, so a test can see what the page asked for.
import http from "node:http";
import { deflateSync } from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A 256×256 RGB PNG: `fill` inside, `edge` on a 2-pixel border. */
export function tilePng(fill = [236, 232, 221], edge = [200, 194, 178]) {
  const size = 256;
  const rows = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x++) {
      const color = x < 2 || y < 2 || x >= size - 2 || y >= size - 2 ? edge : fill;
      row.set(color, 1 + x * 3);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Starts the tile server. Returns `{ origin, template, requests, stop }`. */
export async function startTileServer() {
  const png = tilePng();
  const requests = [];
  const server = http.createServer((request, response) => {
    requests.push({ url: request.url, referer: request.headers.referer ?? null });
    if (!/^\/\d+\/\d+\/\d+\.png$/.test(request.url ?? "")) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "image/png", "content-length": png.length, "cache-control": "no-store" });
    response.end(png);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    template: `${origin}/{z}/{x}/{y}.png`,
    requests,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
