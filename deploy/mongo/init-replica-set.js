// Run by the `mongo-init` one-shot of deploy/compose.yaml (mongosh, authenticated as root):
// initiates the single-node replica set rs0, then makes one user per service that may read and
// write its own database only (<prefix>_<service>, shared/settings.py). Idempotent: rerunning it
// updates the passwords from the environment.
//
// Growing the replica set: start more mongod members with the same --replSet rs0 and keyfile, then
//   rs.add("mongo-2:27017"); rs.add("mongo-3:27017")
// and list every member in the services' MONGODB_URL (deploy/README.md).

const SERVICES = ["accounts", "scheduler", "scraper", "notifier", "requests", "documents"];
const prefix = process.env.COLLECTORS_DB_PREFIX || "collectors";

try {
  rs.status();
} catch (e) {
  print(`initiating replica set rs0 (${e.codeName || e.message})`);
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
}

let waited = 0;
while (!db.hello().isWritablePrimary) {
  if (waited > 60000) throw new Error("no primary after 60 s");
  sleep(500);
  waited += 500;
}

const admin = db.getSiblingDB("admin");
for (const service of SERVICES) {
  const pwd = process.env[`MONGO_${service.toUpperCase()}_PASSWORD`];
  if (!pwd) throw new Error(`MONGO_${service.toUpperCase()}_PASSWORD is not set`);
  const roles = [{ role: "readWrite", db: `${prefix}_${service}` }];
  if (admin.getUser(service)) {
    admin.updateUser(service, { pwd, roles });
  } else {
    admin.createUser({ user: service, pwd, roles });
  }
  print(`user ${service}: readWrite on ${prefix}_${service}`);
}
