// A tiny web app that counts requests in MemCachier through memtunnel.
//
// memjs reads MEMCACHIER_SERVERS, MEMCACHIER_USERNAME and
// MEMCACHIER_PASSWORD itself; memtunnel has rewritten the servers to its
// local listeners before node starts, and SASL runs inside the tunnel.
"use strict";
const http = require("http");
const memjs = require("memjs");

const mc = memjs.Client.create(undefined, { failover: true, timeout: 1, keepAlive: true });

const server = http.createServer(async (req, res) => {
  try {
    const { value } = await mc.increment("node:hits", 1, { initial: 1 });
    res.setHeader("Content-Type", "text/plain");
    res.end(`hits=${value}\n`);
  } catch (err) {
    res.statusCode = 500;
    res.end(`cache error: ${err.message}\n`);
  }
});
server.listen(Number(process.env.PORT || 5000));

process.on("SIGTERM", () => {
  server.close();
  mc.close();
});
