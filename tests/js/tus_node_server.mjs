// tus-node-server (@tus/server with its file store) on loopback: a tus server
// that is not the gateway, for checking clients against the public protocol.
// usage: node tus_node_server.mjs PORT DIR   (prints "ready" once listening)
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const [port, directory] = process.argv.slice(2);
const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const listener = tus.listen({ host: '127.0.0.1', port: Number(port) }, () => console.log('ready'));
process.on('SIGTERM', () => listener.close(() => process.exit(0)));
