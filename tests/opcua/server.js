// A node-opcua server for the OPC UA client tests.
//
//   node server.js <port> <pki dir> [trusted client certificate (PEM)...]
//
// Offers security None and Basic256Sha256 (Sign, SignAndEncrypt), anonymous sessions and one
// user (operator / pump-secret). Folder "Plant" (ns=1;s=Plant) holds Pump1.Temp (a Double
// rising by 0.5 every 100 ms from 20), Pump1.Count (Int32 42), Pump1.Running (Boolean true)
// and Pump1.Name (String "Pump 1"). Writes its certificate (DER) to <pki dir>/server.der and
// prints "ready <port>" once it listens; stops on SIGTERM.
"use strict";
const fs = require("fs");
const path = require("path");
const opcua = require(path.join(__dirname, "..", "peers", "node_modules", "node-opcua"));
const { OPCUAServer, OPCUACertificateManager, Variant, DataType, SecurityPolicy, MessageSecurityMode } = opcua;

async function main() {
    const port = Number(process.argv[2]);
    const pki = process.argv[3];
    const trusted = process.argv.slice(4);
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: false,
    });
    await serverCertificateManager.initialize();
    for (const file of trusted) {
        const pem = fs.readFileSync(file, "utf8");
        const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
        await serverCertificateManager.trustCertificate(Buffer.from(b64, "base64"));
    }
    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        serverCertificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: true,
        userManager: { isValidUser: (user, password) => user === "operator" && password === "pump-secret" },
        buildInfo: { productName: "clisonix-opcua-test-server" },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.getOwnNamespace();
    const plant = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Plant", nodeId: "s=Plant" });
    let temperature = 20;
    setInterval(() => { temperature += 0.5; }, 100);
    ns.addVariable({
        organizedBy: plant, browseName: "Temperature", nodeId: "s=Pump1.Temp", dataType: "Double", minimumSamplingInterval: 100,
        value: { get: () => new Variant({ dataType: DataType.Double, value: temperature }) },
    });
    ns.addVariable({
        organizedBy: plant, browseName: "Count", nodeId: "s=Pump1.Count", dataType: "Int32",
        value: { dataType: DataType.Int32, value: 42 },
    });
    ns.addVariable({
        organizedBy: plant, browseName: "Running", nodeId: "s=Pump1.Running", dataType: "Boolean",
        value: { dataType: DataType.Boolean, value: true },
    });
    ns.addVariable({
        organizedBy: plant, browseName: "Name", nodeId: "s=Pump1.Name", dataType: "String",
        value: { dataType: DataType.String, value: "Pump 1" },
    });
    await server.start();
    fs.writeFileSync(path.join(pki, "server.der"), server.getCertificate());
    process.stdout.write(`ready ${port}\n`);
    const stop = async () => { await server.shutdown(0); process.exit(0); };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((e) => { console.error(e); process.exit(1); });
