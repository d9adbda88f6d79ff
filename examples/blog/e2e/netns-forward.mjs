// Runs inside the browser's own network namespace (see run.mjs, "network isolation"): listens on
// 127.0.0.1:PORT there and forwards every connection to the unix socket SOCKET, which run.mjs
// (in the host's namespace) forwards to 127.0.0.1:PORT on the host. Exits when process PARENT
// (the browser) is gone.
//   node netns-forward.mjs PORT SOCKET PARENT
import net from 'node:net'

const [port, socket, parent] = process.argv.slice(2)
const server = net.createServer((c) => {
  const up = net.connect(socket)
  c.pipe(up)
  up.pipe(c)
  c.on('error', () => up.destroy())
  up.on('error', () => c.destroy())
})
server.listen(Number(port), '127.0.0.1')
setInterval(() => {
  try {
    process.kill(Number(parent), 0)
  } catch {
    process.exit(0)
  }
}, 500)
