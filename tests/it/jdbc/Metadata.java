// pgjdbc browsing cloudpg as a JDBC tool does (DatabaseMetaData), a PreparedStatement run past
// pgjdbc's prepare threshold (so it switches to a named server statement and binary results),
// and fetching 1,000 rows in portions with autocommit off. Prints one line per check for the
// Rust test (tests/it/jdbc.rs) to compare.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;

public class Metadata {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/awscc?prepareThreshold=3";
        try (Connection c = DriverManager.getConnection(url, "postgres", "")) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product=" + md.getDatabaseProductName() + " major=" + md.getDatabaseMajorVersion());

            boolean ec2 = false;
            try (ResultSet r = md.getSchemas()) {
                while (r.next()) {
                    ec2 |= r.getString("TABLE_SCHEM").equals("ec2");
                }
            }
            System.out.println("schemas.ec2=" + ec2);

            try (ResultSet r = md.getTables(null, "ec2", "vpcs", new String[] {"TABLE"})) {
                r.next();
                System.out.println("table=" + r.getString("TABLE_SCHEM") + "." + r.getString("TABLE_NAME") + " type="
                        + r.getString("TABLE_TYPE") + " remarks=" + r.getString("REMARKS").contains("AWS::EC2::VPC"));
            }

            List<String> columns = new ArrayList<>();
            try (ResultSet r = md.getColumns(null, "ec2", "vpcs", null)) {
                while (r.next()) {
                    String name = r.getString("COLUMN_NAME");
                    if (name.equals("enable_dns_hostnames") || name.equals("ipv4_netmask_length") || name.equals("tags")
                            || name.equals("cidr_block") || name.equals("region")) {
                        columns.add(name + ":" + r.getString("TYPE_NAME") + ":" + jdbcType(r.getInt("DATA_TYPE")) + ":"
                                + (r.getInt("NULLABLE") == DatabaseMetaData.columnNoNulls ? "notnull" : "null"));
                    }
                }
            }
            System.out.println("columns=" + String.join(",", columns));

            List<String> keys = new ArrayList<>();
            try (ResultSet r = md.getPrimaryKeys(null, "ec2", "vpcs")) {
                while (r.next()) {
                    keys.add(r.getShort("KEY_SEQ") + ":" + r.getString("COLUMN_NAME") + ":" + r.getString("PK_NAME"));
                }
            }
            System.out.println("keys=" + String.join(",", keys));

            List<String> types = new ArrayList<>();
            try (ResultSet r = md.getTypeInfo()) {
                while (r.next()) {
                    String name = r.getString("TYPE_NAME");
                    if (name.equals("int8") || name.equals("bool") || name.equals("jsonb") || name.equals("text")) {
                        types.add(name + ":" + jdbcType(r.getInt("DATA_TYPE")));
                    }
                }
            }
            java.util.Collections.sort(types);
            System.out.println("types=" + String.join(",", types));

            int functions = 0;
            boolean constraintdef = false;
            try (ResultSet r = md.getFunctions(null, "pg_catalog", "pg_get_%")) {
                while (r.next()) {
                    functions++;
                    constraintdef |= r.getString("FUNCTION_NAME").equals("pg_get_constraintdef");
                }
            }
            System.out.println("functions=" + (functions > 5) + " constraintdef=" + constraintdef);

            // Past prepareThreshold pgjdbc names the statement on the server and asks for
            // binary results; every run must return the same rows.
            List<String> runs = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, subnet_id, preserve_client_ip FROM awscc.ec2.instance_connect_endpoints WHERE region = ? ORDER BY id")) {
                for (int i = 0; i < 5; i++) {
                    ps.setString(1, "us-east-1");
                    int rows = 0;
                    boolean shaped = true;
                    try (ResultSet r = ps.executeQuery()) {
                        while (r.next()) {
                            rows++;
                            shaped &= r.getString("id").startsWith("ice-") && r.getString("subnet_id").startsWith("subnet-");
                            r.getBoolean("preserve_client_ip");
                        }
                    }
                    runs.add(rows + (shaped ? "" : "!"));
                }
            }
            System.out.println("prepared=" + String.join(",", runs));

            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int8 * 2, ?::bool, ?::text IS NULL, ?::float8")) {
                List<String> typed = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    ps.setLong(1, 21L);
                    ps.setBoolean(2, true);
                    ps.setNull(3, Types.VARCHAR);
                    ps.setDouble(4, 1.5);
                    try (ResultSet r = ps.executeQuery()) {
                        r.next();
                        typed.add(r.getLong(1) + "/" + r.getBoolean(2) + "/" + r.getBoolean(3) + "/" + r.getDouble(4));
                    }
                }
                System.out.println("typed=" + typed.get(0) + " same=" + typed.stream().distinct().count());
            }

            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(10);
                long rows = 0, sum = 0;
                try (ResultSet r = s.executeQuery("SELECT value FROM generate_series(1, 1000)")) {
                    while (r.next()) {
                        rows++;
                        sum += r.getLong(1);
                    }
                }
                System.out.println("fetch10=" + rows + "/" + sum);
                s.setFetchSize(Integer.MAX_VALUE);
                rows = 0;
                try (ResultSet r = s.executeQuery("SELECT value FROM generate_series(1, 1000)")) {
                    while (r.next()) {
                        rows++;
                    }
                }
                System.out.println("fetchmax=" + rows);
            }
            c.commit();
        }
    }

    private static String jdbcType(int t) {
        switch (t) {
            case Types.BIT: return "BIT";
            case Types.BOOLEAN: return "BOOLEAN";
            case Types.BIGINT: return "BIGINT";
            case Types.VARCHAR: return "VARCHAR";
            case Types.OTHER: return "OTHER";
            default: return Integer.toString(t);
        }
    }
}
