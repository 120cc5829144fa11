//! What `meridian up` prints once the cluster is up: the endpoints and how to use them.

use meridian_control::ClusterSpec;

use crate::cluster::ClusterFile;

pub(super) fn print_banner(file: &ClusterFile, spec: &ClusterSpec) {
    let mut out = String::new();
    let topo = match &spec.topology.hub {
        Some(hub) => format!("star around {hub}"),
        None => "mesh".to_owned(),
    };
    out.push_str(&format!(
        "\nMeridian is up: {} regions ({topo}), control plane, DNS and gateway. Data in {}\n\n",
        file.regions.len(),
        file.data_dir.display()
    ));
    for r in &file.regions {
        out.push_str(&format!(
            "  region {:<14} {:<24} pid {}\n",
            r.name,
            r.endpoint,
            r.proc.pid.unwrap_or(0)
        ));
    }
    out.push_str(&format!(
        "  gateway               {:<24} pid {}   (home-region pinning, failover)\n",
        file.gateway.endpoint,
        file.gateway.proc.pid.unwrap_or(0)
    ));
    out.push_str(&format!(
        "  dns                   {:<24} pid {}   answers {}\n",
        file.dns.addr,
        file.dns.proc.pid.unwrap_or(0),
        file.dns.name
    ));
    out.push_str(&format!(
        "  control plane         {:<24} pid {}   (spec version {})\n",
        file.control.endpoint,
        file.control.proc.pid.unwrap_or(0),
        file.spec_version.unwrap_or(0)
    ));
    if !file.replication {
        out.push_str(
            "\n  (this build of `meridian region` has no replication: regions run independently)\n",
        );
    }
    let table = spec.tables.first();
    let (t, pk) = table.map_or(("users", "pk"), |t| {
        (t.name.as_str(), t.partition_key.name.as_str())
    });
    let gw = &file.gateway.endpoint;
    let other = file.regions.get(1).or(file.regions.first());
    let (dns_host, dns_port) = file
        .dns
        .addr
        .rsplit_once(':')
        .unwrap_or(("127.0.0.1", "53"));
    out.push_str(
        "\nTry it (any credentials work):\n\
         \n  export AWS_ACCESS_KEY_ID=any AWS_SECRET_ACCESS_KEY=any AWS_DEFAULT_REGION=us-east-1\n",
    );
    if table.is_none() {
        out.push_str(&format!(
            "  aws dynamodb --endpoint-url {gw} create-table --table-name {t} --attribute-definitions AttributeName={pk},AttributeType=S --key-schema AttributeName={pk},KeyType=HASH --billing-mode PAY_PER_REQUEST\n"
        ));
    }
    out.push_str(&format!(
        "  aws dynamodb --endpoint-url {gw} put-item --table-name {t} --item '{{\"{pk}\": {{\"S\": \"alice\"}}}}'\n"
    ));
    if let Some(o) = other {
        out.push_str(&format!(
            "  aws dynamodb --endpoint-url {} get-item --table-name {t} --key '{{\"{pk}\": {{\"S\": \"alice\"}}}}'   # read it in {}\n",
            o.endpoint, o.name
        ));
    }
    out.push_str(&format!(
        "  python3 -c 'import boto3; d = boto3.client(\"dynamodb\", endpoint_url=\"{gw}\", region_name=\"us-east-1\", aws_access_key_id=\"any\", aws_secret_access_key=\"any\"); print(d.list_tables())'\n"
    ));
    out.push_str(&format!(
        "  dig @{dns_host} -p {dns_port} {}                 # the nearest healthy region\n",
        file.dns.name
    ));
    out.push_str(&format!(
        "  dig @{dns_host} -p {dns_port} +subnet=81.2.69.0/24 {}  # a client in Europe (ECS)\n",
        file.dns.name
    ));
    out.push_str(
        "\nOperate it: meridian status | meridian region drain NAME | meridian fault kill|restart|partition|heal|delay|skew … | meridian ids | meridian apply -f spec.toml\n",
    );
    out.push_str(&format!(
        "Cluster file: {}. Ctrl-C stops everything.\n",
        file.data_dir.join("cluster.json").display()
    ));
    println!("{out}");
}
