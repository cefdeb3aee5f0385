// labd's @labdigital/commercetools-mock served over HTTP (API and auth on one port), for
// test_labd_commercetools_mock.py. Port from argv[2].
import { CommercetoolsMock } from "@labdigital/commercetools-mock";

const port = Number(process.argv[2]);
const base = `http://127.0.0.1:${port}`;
const mock = new CommercetoolsMock({ enableAuthentication: true, validateCredentials: false, apiHost: base, authHost: base });
await mock.runServer(port);
process.stdout.write(`listening ${base}\n`);
process.on("SIGTERM", () => process.exit(0));
