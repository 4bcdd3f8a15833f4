// The peer a user would otherwise pick: @octokit/webhooks-methods' verify and JSON.parse
// behind node:http, answering as the gateway does (202, no body; 401 on a bad signature).
// Usage: node server.mjs PORT SECRET
import http from "node:http";
import { verify } from "@octokit/webhooks-methods";

const [port, secret] = process.argv.slice(2);
http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const signature = req.headers["x-hub-signature-256"] || "";
      if (!(await verify(secret, body, signature))) {
        res.writeHead(401).end();
        return;
      }
      const payload = JSON.parse(body);
      if (payload === null) {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(202).end();
    });
  })
  .listen(Number(port), "127.0.0.1");
